"""The job end to end on a local Ray instance: every frame labelled, a broken video recorded, resume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from savos.data.synthetic import make_video
from savos.quality import OnlineAdaptation, Quality
from savos_job.prelabel import EXIT_SOME_FAILED, main
from tests.conftest import write_dataset
from tests.jobs.outputs import engine_masks, read_masks

pytestmark = pytest.mark.ray


def _args(corpus: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return ["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint), "--num-actors", "2", *extra]


def test_local_corpus_broken_video_and_resume(
    ray_local, tmp_path: Path, checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    videos = {"a": make_video(4, num_objects=2, seed=1), "b": make_video(3, seed=2), "c": make_video(5, seed=3)}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    broken = corpus / "JPEGImages" / "480p" / "c" / "00002.jpg"
    broken.write_bytes(b"not a jpeg")
    out = tmp_path / "out"

    with caplog.at_level(logging.INFO, logger="savos_job.prelabel"):
        assert main(_args(corpus, out, checkpoint, "--progress-every", "0")) == EXIT_SOME_FAILED
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("videos done")]
    assert len(progress) == 3 + 1  # one line per video at this interval, and the final one
    assert progress[-1].startswith("videos done 2, failed 1; 7 frames")
    table = pads.dataset(out / "masks", partitioning="hive").to_table().to_pandas()
    assert sorted(table.groupby("video_id").size().items()) == [("a", 4 * 2), ("b", 3 * 2)]
    written = read_masks(str(out))
    for video_id in ("a", "b"):
        expected = engine_masks(checkpoint, corpus / "JPEGImages" / "480p" / video_id, videos[video_id].masks[0])
        assert written[video_id].keys() == expected.keys()
        for t, ids in expected.items():
            np.testing.assert_array_equal(written[video_id][t], ids, err_msg=f"{video_id} frame {t}")
    assert json.loads((out / "failures" / "c.json").read_text())["error_type"] == "InputError"
    (summary_path,) = (out / "_runs").iterdir()
    summary = json.loads(summary_path.read_text())
    assert (summary["videos_done"], summary["videos_failed"], summary["frames"]) == (2, 1, 7)
    # Labelling time runs from the first video opened to the last written: inside the run, after its start.
    assert 0 < summary["seconds_to_first_video"] < summary["seconds"]
    assert 0 < summary["labelling_seconds"] <= summary["seconds"] - summary["seconds_to_first_video"] + 0.01
    seconds = summary["labelling_seconds"]  # rounded to the millisecond; the rate was computed before rounding
    assert 7 / (seconds + 5e-4) - 1e-3 <= summary["labelling_frames_per_second"] <= 7 / (seconds - 5e-4) + 1e-3

    # A rerun writes nothing new; the failed video is left alone unless asked, and still has no masks: status 3.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.parquet")}
    assert main(_args(corpus, out, checkpoint)) == EXIT_SOME_FAILED
    assert {p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.parquet")} == stamps

    # Delete one video's output and fix the broken one: exactly those two are redone.
    (out / "masks" / "video_id=b" / "part-0.parquet").unlink()
    write_dataset(tmp_path / "fixed", {"c": videos["c"]}, every=1000)
    broken.write_bytes((tmp_path / "fixed" / "JPEGImages" / "480p" / "c" / "00002.jpg").read_bytes())
    assert main(_args(corpus, out, checkpoint, "--retry-failed")) == 0
    assert {
        p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.parquet") if p in stamps and "=b" not in str(p)
    } == {p: t for p, t in stamps.items() if "=b" not in str(p)}
    assert (out / "masks" / "video_id=b" / "part-0.parquet").exists()
    assert (out / "masks" / "video_id=c" / "part-0.parquet").exists()
    assert not (out / "failures" / "c.json").exists()
    runs = sorted(json.loads(p.read_text())["videos_done"] for p in (out / "_runs").iterdir())
    assert runs == [0, 2, 2]


def test_quality_options_reach_the_actors_and_lockstep_keeps_each_videos_masks(
    ray_local, tmp_path: Path, checkpoint: Path
) -> None:
    """``--quality best`` (online adaptation) with ``--flip`` and four videos in one actor's lock-step writes
    what the engine gives each video alone with the same options; the run summary says what ran."""
    videos = {name: make_video(3, num_objects=1 + i % 2, seed=10 + i) for i, name in enumerate("abcd")}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    out = tmp_path / "out"
    options = ["--quality", "best", "--flip", "--online-steps", "2", "--online-lr", "1e-3", "--lockstep", "4"]
    assert main(_args(corpus, out, checkpoint, *options, "--num-actors", "1")) == 0

    (summary_path,) = (out / "_runs").iterdir()
    summary = json.loads(summary_path.read_text())
    assert summary["test_time"]["flip"] is True
    assert summary["test_time"]["online"]["steps"] == 2
    assert summary["test_time"]["online"]["lr"] == 1e-3
    written = read_masks(str(out))
    online = OnlineAdaptation(steps=2, lr=1e-3)
    plain_differs = False
    for video_id, video in videos.items():
        frames = corpus / "JPEGImages" / "480p" / video_id
        expected = engine_masks(checkpoint, frames, video.masks[0], Quality(flip=True, online=online))
        for t, ids in expected.items():
            np.testing.assert_array_equal(written[video_id][t], ids, err_msg=f"{video_id} frame {t}")
        plain = engine_masks(checkpoint, frames, video.masks[0])
        plain_differs |= any(not np.array_equal(plain[t], ids) for t, ids in expected.items())
    assert plain_differs  # the options changed the masks: the actors did not ignore them
