"""What CPU inference needs from the machine: native bf16 detection and an allocator that keeps its memory.

Both were measured on the 2-core development VM (BENCHMARKS.md, "Engine against the naive path"): the efficientnet_lite0
target step at 480p ran 1.6-1.9x faster in bf16 than in fp32 on a CPU with AVX512-BF16, and up to 2.5x faster once
glibc stopped returning the step's large activations to the kernel after every operation.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading

import torch

logger = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
HEAP_PAD_BYTES = 1 << 30
_HEAP_OPTIONS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TOP_PAD, HEAP_PAD_BYTES))
# The same as environment variables, read by glibc when a process starts (for worker processes, e.g. Ray actors).
HEAP_ENV = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TOP_PAD_": str(HEAP_PAD_BYTES)}
_lock = threading.Lock()
_heap_retained: bool | None = None


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16, AMX-BF16, Arm BF16); elsewhere bf16 is emulated
    and slower than fp32."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return any(value is True and "bf16" in name for name, value in capabilities.items())


def retain_heap() -> bool:
    """Keep freed memory in the process instead of returning it to the kernel after each operation.

    A batched 480p step allocates and frees activations of tens of megabytes per layer. glibc serves those with
    fresh ``mmap`` pages (or trims its heap after them), so every layer pays for page faults on memory it just
    gave back: a third of the CPU time went to the kernel. Here: no ``mmap`` for large blocks, a 1 GiB pad kept
    at the top of the heap, one arena for all threads. Costs up to about 1 GiB of resident memory after a peak.

    Takes effect in this thread and in threads started afterwards; a thread that already allocated keeps its own
    arena (and its page faults). Processes started later get the same from :data:`HEAP_ENV` in their
    environment. A no-op (False) where the C library is not glibc. Idempotent, process-wide.
    """
    global _heap_retained
    with _lock:
        if _heap_retained is None:
            _heap_retained = all(_mallopt(param, value) for param, value in _HEAP_OPTIONS)
            logger.debug("glibc heap retained for CPU inference: %s", _heap_retained)
        return _heap_retained


def tune_process_for_cpu_inference() -> None:
    """Where there is no GPU, :func:`retain_heap`. Process-wide, so an entry point's choice (the ``savos``
    command, the job's actors), never a side effect of building a predictor inside someone's program."""
    if not torch.cuda.is_available():
        retain_heap()


def _mallopt(param: int, value: int) -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(param, value))
    except (OSError, AttributeError):
        return False
