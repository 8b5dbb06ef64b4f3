"""FLOPs of the network's steps, counted by PyTorch's FLOP counter (convolutions and matrix products; the
element-wise work it leaves out is a few percent at most here), and the device's peak to compare with."""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..model import SAVOS

# Dense bf16 tensor-core peaks from the vendors' datasheets, FLOP/s (sparsity not counted).
DATASHEET_BF16_PEAK = {"H100 80GB HBM3": 989.4e12, "H100 PCIe": 756.5e12, "H200": 989.4e12, "A100": 312e12}


@torch.inference_mode()
def step_flops(model: SAVOS, height: int, width: int, device: torch.device) -> dict[str, int]:
    """FLOPs of one object through the target step (encoder + decoder: paid every frame) and through the
    reference branch (paid once per object per video), at ``height x width``."""
    dtype = next(model.parameters()).dtype  # a predictor's model on CUDA holds bf16 weights
    image = torch.rand(1, 3, height, width, device=device, dtype=dtype)
    mask = torch.rand(1, 1, height, width, device=device, dtype=dtype)
    with FlopCounterMode(display=False) as counter:
        reference = model.encode_reference(image, mask)
    reference_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model.decode(reference, model.encode_target(image, mask), (height, width))
    return {"target_step": counter.get_total_flops(), "reference": reference_flops}


def datasheet_peak(device_name: str) -> float | None:
    """The datasheet's dense bf16 peak of a known GPU, else None."""
    for name, peak in DATASHEET_BF16_PEAK.items():
        if name in device_name:
            return peak
    return None


def measured_matmul_peak(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of a large bf16 matrix product on ``device``: the ceiling actually reachable."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)
