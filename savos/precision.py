"""Names of the inference precisions, importable without torch (for the command lines)."""

PRECISION_CHOICES = ("auto", "bf16", "fp16", "fp32")
PRECISION_HELP = "auto (default): bf16 on CUDA and on CPUs with native bf16, else fp32"
