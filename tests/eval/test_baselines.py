"""The copy and optical-flow baselines, and ``savos predict`` that runs them (or the model) on a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from savos.cli import main
from savos.data import read_mask
from savos.data.synthetic import make_video
from savos.eval.baselines import run_baseline
from tests.conftest import write_dataset


def _moving_square(steps: int, dx: int = 3) -> tuple[list[np.ndarray], np.ndarray]:
    """A textured square sliding right ``dx`` px per frame over a textured background."""
    rng = np.random.default_rng(0)
    background = (rng.random((60, 90, 3)) * 80).astype(np.uint8)
    texture = (rng.random((20, 20, 3)) * 120 + 120).astype(np.uint8)
    frames = []
    for t in range(steps):
        frame = background.copy()
        frame[20:40, 10 + dx * t : 30 + dx * t] = texture
        frames.append(frame)
    first = np.zeros((60, 90), np.uint8)
    first[20:40, 10:30] = 1
    return frames, first


def test_copy_repeats_the_first_mask() -> None:
    frames, first = _moving_square(3)
    assert all(np.array_equal(ids, first) for ids in run_baseline("copy", frames, first))


def test_flow_follows_the_motion() -> None:
    frames, first = _moving_square(5)
    last = list(run_baseline("flow", frames, first))[-1]
    truth = np.zeros_like(first)
    truth[20:40, 22:42] = 1
    iou = np.count_nonzero((last == 1) & (truth == 1)) / np.count_nonzero((last == 1) | (truth == 1))
    assert iou > 0.8  # copying the first mask would give 8/32 = 0.25


def test_unknown_baseline() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baseline("magic", [], np.zeros((2, 2), np.uint8))


def test_predict_then_eval(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "davis", {"s1": make_video(5, seed=1), "s2": make_video(4, seed=2)})
    assert main(["predict", "--data", str(root), "--out", str(tmp_path / "pred"), "--baseline", "copy"]) == 0
    first = read_mask(root / "Annotations" / "480p" / "s1" / "00000.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "pred" / "s1" / "00004.png"), first)
    report = tmp_path / "report.json"
    args = ["eval", "--gt", str(root), "--pred", str(tmp_path / "pred"), "--json", str(report), "--processes", "1"]
    assert main(args) == 0
    assert set(json.loads(report.read_text())["sequences"]) == {"s1", "s2"}
