"""``python -m savos_job.bench``: the listing's memory per video, and a no-op-model run through Ray (speed is measured
by the command, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from savos.data.synthetic import make_video
from savos.model import SAVOS
from savos_job.bench import CarryForward, listing, main


def test_the_no_op_predictor_carries_the_first_masks_forward(tiny_model: SAVOS) -> None:
    video = make_video(4, num_objects=2, seed=5)
    predictor = CarryForward(tiny_model, device="cpu")
    state = predictor.init_state(video.frames)
    for obj_id in (1, 2):
        predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
    first = None
    for _, _, probs in predictor.propagate(state):
        first = probs if first is None else first
        np.testing.assert_allclose(probs.numpy(), first.numpy(), atol=1e-5)


def test_listing_counts_every_manifest_row_and_measures_the_driver(tmp_path: Path) -> None:
    result = listing(tmp_path, 3000)
    assert result["videos"] == 3000
    assert 0 < result["peak_bytes_per_video"] < 2000  # a video id and little else is held per video


@pytest.mark.ray
def test_the_no_op_job_runs_through_ray_and_reports_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--only", "overhead", "--overhead-videos", "4", "--actors", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["overhead"]["job"]["videos"] == 4
    assert results["overhead"]["job"]["frames"] == 16
    assert results["units"]["videos_per_s"] == "videos/s"


@pytest.mark.ray
def test_the_job_is_measured_against_the_engine_on_the_same_videos(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--only", "throughput", "--videos", "4", "--frames", "3", "--size", "64", "96", "--json", str(out)]
    assert main(args) == 0
    measured = json.loads(out.read_text())["throughput"]
    assert measured["engine_before"]["frames"] == measured["engine_after"]["frames"] == measured["job"]["frames"] == 12
    assert 0 < measured["job"]["labelling_seconds"] < measured["job"]["seconds"]
    assert measured["job_vs_engine"] == pytest.approx(measured["job"]["frames_per_s"] / measured["engine_frames_per_s"])
