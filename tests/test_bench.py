"""``savos bench``: the naive reference path computes what the engine computes, and the report has every figure
(speed is measured by the command, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from savos.bench import TOLERANCE, bench_engine
from savos.cli import main
from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.inference.naive import naive_propagate
from savos.model import SAVOS


def test_naive_path_equals_the_engine(tiny_model: SAVOS) -> None:
    video = make_video(5, num_objects=3, seed=3)
    first = {i: video.masks[0] == i for i in (1, 2, 3)}
    predictor = Predictor(tiny_model, device="cpu")
    state = predictor.init_state(list(video.frames))
    for obj_id, mask in first.items():
        predictor.add_mask(state, 0, obj_id, mask)
    engine = [(t, ids, p.clone()) for t, ids, p in predictor.propagate(state)]
    naive = list(naive_propagate(tiny_model, list(video.frames), first))
    assert [(t, ids) for t, ids, _ in engine] == [(t, ids) for t, ids, _ in naive]
    for (_, _, a), (_, _, b) in zip(engine, naive, strict=True):
        torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=0)
    assert float((engine[-1][2] - engine[1][2]).abs().max()) > 1e-3  # the clip moves: the check is not vacuous


def test_bench_reports_ratios_by_object_count(tiny_model: SAVOS) -> None:
    results = bench_engine(tiny_model, [1, 4], frames=3, height=64, width=96)
    assert set(results["engine_vs_naive"]) == {"1", "4"}
    for row in results["rows"]:
        assert row["equal_within_tolerance"]
        assert row["engine_object_frames_per_s"] > 0
        assert row["naive_object_frames_per_s"] > 0
    assert np.isclose(
        results["engine_vs_naive"]["4"],
        results["rows"][1]["engine_object_frames_per_s"] / results["rows"][1]["naive_object_frames_per_s"],
    )


@pytest.mark.slow
def test_bench_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--objects", "1", "2", "--frames", "2", "--size", "64", "96", "--json", str(out)]
    assert main([*args, "--backbone", "efficientnet_lite0"]) == 0
    results = json.loads(out.read_text())
    assert set(results["engine_vs_naive"]) == {"1", "2"}
    assert results["units"]["engine_vs_naive"].startswith("ratio")
    assert results["config"]["model"] == "efficientnet_lite0"


def test_lockstep_report_has_a_row_per_object_count_and_k_with_flops(tiny_model: SAVOS) -> None:
    from savos.bench.lockstep import format_lockstep, lockstep_report

    results = lockstep_report(Predictor(tiny_model, device="cpu"), [1, 2], [1, 2], frames=3, height=32, width=48)
    assert [(r["objects_per_video"], r["k"], r["videos"]) for r in results["lockstep"]] == [
        (1, 1, 2),
        (1, 2, 4),
        (2, 1, 2),
        (2, 2, 4),
    ]
    assert results["flops"]["target_step"] > results["flops"]["reference"] > 0
    for row in results["lockstep"]:
        assert row["object_frames"] > 0
        assert np.isclose(row["flops_per_s"], row["object_frames_per_s"] * results["flops"]["target_step"])
    assert results["peak_flops_per_s"]["datasheet_bf16"] is None  # a CPU has no datasheet peak here
    assert "GFLOP per object-frame" in format_lockstep(results)
