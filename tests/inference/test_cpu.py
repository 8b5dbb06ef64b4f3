"""CPU inference settings: bf16 only where the CPU multiplies it natively, and a heap that keeps its memory."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from savos.inference import EngineOptions, Predictor
from savos.inference import cpu as cpu_module
from savos.inference.engine import compute_dtype
from savos.model import SAVOS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        ({"avx512_bf16": True, "avx2": True}, True),
        ({"amx_bf16": True}, True),
        ({"avx512_bf16": False}, False),
        ({}, False),
    ],
)
def test_native_bf16_reads_the_cpu_capabilities(monkeypatch, capabilities: dict, expected: bool) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert cpu_module.native_bf16() is expected


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_on_the_cpu_only_where_native(monkeypatch, tiny_model: SAVOS, native: bool) -> None:
    monkeypatch.setattr("savos.inference.engine.native_bf16", lambda: native)
    assert Predictor(tiny_model, device="cpu").dtype == (torch.bfloat16 if native else torch.float32)
    assert Predictor(tiny_model, device="cpu", precision="fp32").dtype == torch.float32
    assert compute_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert compute_dtype("fp16", torch.device("cuda")) == torch.float16


def test_channels_last_is_the_cpu_default_for_every_backbone(tiny_model: SAVOS) -> None:
    assert Predictor(tiny_model, device="cpu").channels_last
    assert not Predictor(tiny_model, device="cpu", options=EngineOptions(channels_last=False)).channels_last


KEPT = """
import sys, torch
from savos.inference.cpu import retain_heap
if sys.argv[1] == "retain":
    assert retain_heap()
if sys.argv[1] == "predictor":  # a library user's program: building a predictor must not change its allocator
    from savos.inference import Predictor
    from savos.model import build_savos
    from tests.conftest import TINY
    Predictor(build_savos(TINY, backbone_weights="none"), device="cpu")
def resident_pages():
    return int(open("/proc/self/statm").read().split()[1])
torch.empty(1 << 20, dtype=torch.uint8).fill_(1)  # threads started first: their stacks are not what is measured
before = resident_pages()
block = torch.empty(64 << 20, dtype=torch.uint8)
block.fill_(1)
del block
print(resident_pages() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_retained_heap_keeps_freed_large_blocks_resident() -> None:
    """What spares the next step its page faults: freed memory stays mapped in the process. (Whether glibc then
    hands the same pages to the next request depends on its bins; measured on the real step in BENCHMARKS.md.)"""

    def kept_pages(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", KEPT, mode], capture_output=True, text=True, check=True, cwd=ROOT)
        return int(run.stdout)

    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert kept_pages("default") < pages // 10  # glibc maps a 64 MiB block apart and unmaps it when freed
    assert kept_pages("retain") > pages * 9 // 10
    assert kept_pages("predictor") < pages // 10  # process-wide tuning is the entry points' (CLI, actor) to opt in
