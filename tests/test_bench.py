"""``savos bench``: the naive reference path computes what the engine computes, and the report has every figure
(speed is measured by the command, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from savos.bench import TOLERANCE, bench_engine
from savos.bench.engine import LABEL_AGREEMENT, _agreement
from savos.cli import main
from savos.data.synthetic import make_video
from savos.inference import EngineOptions, Predictor
from savos.inference.cpu import native_bf16
from savos.inference.naive import naive_propagate
from savos.model import SAVOS

ROOT = Path(__file__).resolve().parents[1]


def test_naive_path_equals_the_engine(tiny_model: SAVOS) -> None:
    video = make_video(5, num_objects=3, seed=3)
    first = {i: video.masks[0] == i for i in (1, 2, 3)}
    predictor = Predictor(tiny_model, device="cpu", precision="fp32")
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
        assert row["max_abs_difference_fp32"] <= TOLERANCE
        assert row["label_agreement"] >= LABEL_AGREEMENT
        assert row["confident_pixels"] > 0
        assert row["engine_object_frames_per_s"] > 0
        assert row["engine_fp32_object_frames_per_s"] > 0
        assert row["naive_object_frames_per_s"] > 0
    assert results["config"]["precision"] == ("torch.bfloat16" if native_bf16() else "torch.float32")
    assert np.isclose(
        results["engine_vs_naive"]["4"],
        results["rows"][1]["engine_object_frames_per_s"] / results["rows"][1]["naive_object_frames_per_s"],
    )


def test_reduced_precision_check_counts_only_pixels_labelled_with_a_margin() -> None:
    # One object, two pixels: the first is clearly the object (0.9), the second a near-tie (0.52 vs 0.48).
    naive = [([1], torch.tensor([[[0.9, 0.52]]]))]
    tie_tipped = [([1], torch.tensor([[[0.9, 0.47]]]))]
    confident_flipped = [([1], torch.tensor([[[0.3, 0.52]]]))]
    assert _agreement(naive, naive) == (1.0, 0.5)
    assert _agreement(tie_tipped, naive) == (1.0, 0.5)
    assert _agreement(confident_flipped, naive) == (0.0, 0.5)


@pytest.mark.slow
def test_bench_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "engine", "--objects", "1", "2", "--frames", "2", "--size", "64", "96", "--json", str(out)]
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


def test_scaling_report_sweeps_objects_and_sizes_and_draws_a_png(tiny_model: SAVOS, tmp_path: Path) -> None:
    from savos.bench.scaling import plot_scaling, scaling_report

    predictor = Predictor(tiny_model, device="cpu", options=EngineOptions(max_pixels=48 * 64))
    sizes = {"small": (32, 48), "large": (96, 128)}
    results = scaling_report(predictor, frames=3, objects=(1, 2), resolutions=sizes, objects_at=(32, 48))
    assert [row["objects"] for row in results["by_objects"]] == [1, 2]
    assert [row["name"] for row in results["by_resolution"]] == ["small", "large"]
    assert [row["network_pixels"] for row in results["by_resolution"]] == [32 * 48, 48 * 64]  # the budget caps
    assert all(row["object_frames_per_s"] > 0 for row in results["by_objects"] + results["by_resolution"])
    plot_scaling(results, tmp_path / "scaling.png", "tiny")
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quality_bench_reports_every_preset_and_counts_each_view(tiny_model: SAVOS) -> None:
    from savos.bench.quality import bench_quality, format_quality
    from savos.quality import OnlineAdaptation, Quality

    presets = {
        "one": Quality(),
        "mirrored": Quality(flip=True),
        "adapted": Quality(online=OnlineAdaptation(steps=10, crop=(32, 64), batch_size=1)),
    }
    results = bench_quality(tiny_model, presets, objects=(1, 2), frames=3, size=(48, 64), adapt_steps=1)
    rows = {(r["preset"], r["objects"]): r for r in results["rows"]}
    assert set(rows) == {(p, n) for p in presets for n in (1, 2)}
    for n in (1, 2):
        assert rows["mirrored", n]["gflop_per_frame"] == pytest.approx(2 * rows["one", n]["gflop_per_frame"])
        assert rows["one", n]["adaptation_seconds"] is None
        assert rows["adapted", n]["adaptation_seconds"] > 0
        assert rows["adapted", n]["adaptation_gflop"] > 0
    assert rows["one", 2]["gflop_per_frame"] == pytest.approx(2 * rows["one", 1]["gflop_per_frame"])
    assert rows["adapted", 1]["passes_per_frame"] == 1
    assert rows["mirrored", 1]["passes_per_frame"] == 2
    assert format_quality(results).count("\n") == 2 + len(rows) - 1


def test_each_bench_kind_takes_only_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    from savos.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "lockstep", "1", "4", "--objects", "1", "--no-pin-memory"])
    assert (args.k, args.objects, args.no_pin_memory) == ([1, 4], [1], True)
    assert parser.parse_args(["bench", "quality", "fast", "best"]).presets == ["fast", "best"]
    for foreign in (["scaling", "--objects", "1"], ["engine", "--plot", "x.png"], ["quality", "fast", "--compile"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", *foreign])
        assert "unrecognized arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["bench"])  # a kind is required
    assert "KIND" in capsys.readouterr().err


def test_the_compaction_bench_measures_both_layouts(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert (
        main(["bench", "compaction", "--videos", "30", "--frames", "2", "--size", "32", "48", "--json", str(out)]) == 0
    )
    results = json.loads(out.read_text())
    assert results["files"]["before"] == 30
    assert results["files"]["after"] == 3  # one compacted file, its index and the pointer to it
    assert set(results["speedup"]) == {"one_video_s", "whole_table_s", "read_video_masks_s"}
    assert all(v > 0 for v in results["speedup"].values())


def test_the_cost_table_comes_from_the_measured_json_and_the_prices(tmp_path: Path) -> None:
    from savos.bench.cost import FRAMES_PER_VIDEO, PRICES, cost_table

    measured = json.loads((ROOT / "benchmarks/h100-2026-11-22/f-lite0-readback.json").read_text())
    table = cost_table(measured)
    rows = {(r["gpu"], r["objects"]): r for r in table["rows"]}
    h100 = rows[("H100 80GB", 1)]
    assert h100["measured"]
    assert h100["object_frames_per_s"] == round(max(r["object_frames_per_s"] for r in measured["lockstep"][:6]), 1)
    hours = 1000 * FRAMES_PER_VIDEO / h100["object_frames_per_s"] / 3600
    assert h100["gpu_usd_per_1000"] == pytest.approx(hours * PRICES["gpus"]["H100 80GB"][0], abs=0.01)
    l4 = rows[("L4", 1)]
    assert not l4["measured"]
    assert l4["object_frames_per_s"] == pytest.approx(h100["object_frames_per_s"] * 121 / 989, abs=0.1)
    cheaper = {"gpus": {"H100 80GB": [1.0, 989.0, "a test price"]}}
    (prices := tmp_path / "prices.json").write_text(json.dumps(cheaper))
    out = tmp_path / "cost.json"
    assert (
        main(
            [
                "bench",
                "cost",
                str(ROOT / "benchmarks/h100-2026-11-22/f-lite0-readback.json"),
                "--prices",
                str(prices),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    again = {(r["gpu"], r["objects"]): r for r in json.loads(out.read_text())["rows"]}
    assert again[("H100 80GB", 1)]["gpu_usd_per_1000"] == pytest.approx(hours * 1.0, abs=0.01)
    assert again[("L4", 1)]["gpu_usd_per_1000"] == l4["gpu_usd_per_1000"]
