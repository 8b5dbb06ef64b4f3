"""The scale simulation: its synthetic corpus, its measurements, and the job's promise under it with a node lost
while calls of several videos each are in flight."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from savos.io import compact
from savos_job.scale import main, outcomes
from savos_job.simulate import SimulatedVideo, manifest_rows

pytestmark = pytest.mark.ray


def test_a_simulated_video_is_described_by_its_uri() -> None:
    video = SimulatedVideo(frames=300, ms_per_frame=2.5, fails=True)
    assert SimulatedVideo.from_uri(video.uri("video-0000007")) == video
    rows = list(manifest_rows(200, 3, 0.0, fail_every=100))
    assert [row["video_id"] for row in rows[:2]] == ["video-0000000", "video-0000001"]
    failing = [row["video_id"] for row in rows if SimulatedVideo.from_uri(row["video"]).fails]
    assert failing == ["video-0000099", "video-0000199"]
    with pytest.raises(ValueError, match="not a simulated video"):
        SimulatedVideo.from_uri("s3://bucket/video.mp4")


def test_a_sweep_measures_the_driver_and_draws_it(tmp_path: Path) -> None:
    results, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    args = ["sweep", "--actors", "1", "2", "--lockstep", "2", "--videos", "120", "--json", str(results)]
    assert main([*args, "--plot", str(plot), "--work", str(tmp_path)]) == 0
    points = json.loads(results.read_text())["points"]
    assert [p["actors"] for p in points] == [1, 2]
    assert [p["videos_in_flight"] for p in points] == [4, 8]
    for point in points:
        assert (point["videos"], point["videos_done"], point["videos_failed"]) == (120, 119, 1)
        assert point["videos_per_s"] > 0
        assert point["driver_cpu_ms_per_video"] > 0
        assert point["driver_peak_rss_bytes"] > 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not list(tmp_path.glob("savos-scale-*")), "the sweep's corpus and outputs are removed"


def test_a_node_killed_mid_run_loses_no_video_with_several_videos_per_call(tmp_path: Path) -> None:
    results = tmp_path / "run.json"
    args = ["run", "--videos", "600", "--nodes", "3", "--actors", "4", "--lockstep", "4", "--kill-at", "0.3"]
    # 2 frames of 20 ms: the run lasts long enough for the node to go in its middle.
    args += ["--frames", "2", "--ms-per-frame", "20", "--json", str(results), "--output", str(tmp_path / "out")]
    assert main(args) == 0
    run = json.loads(results.read_text())["run"]
    killed = run["killed_node"]
    assert killed is not None
    assert killed["actors"] >= 1, "the node killed held no actor: the test proved nothing"
    assert killed["at_videos"] < 600
    assert run["outcomes"] == {"masks": 594, "failure_records": 6, "both": 0, "neither": 0, "temporary_files": 0}
    assert (run["videos_done"], run["videos_failed"], run["videos_unrecorded"]) == (594, 6, 0)
    assert outcomes(str(tmp_path / "out"), 600) == run["outcomes"]
    result = compact(str(tmp_path / "out"))  # each video's file named the run; the index keeps it
    index = pq.read_table(tmp_path / "out" / "_compaction" / f"index-{result.generation}.parquet")
    assert index.num_rows == 594
    assert set(index.column("run_id").to_pylist()) == {run["run_id"]}
