"""One video through the labeler on a local corpus: rows match the engine, failures are records."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from savos.calibration import CALIBRATION_KEY, JCalibration
from savos.data import write_palette_png
from savos.data.synthetic import make_video
from savos.inference import Predictor, probs_to_ids
from savos.inference.passes import CPU_PASS_PIXELS
from savos.io import read_video_masks
from savos.io.schema import decode_row, run_id_of
from savos.model import SAVOS
from savos.quality import OnlineAdaptation, Quality
from savos_job.bench import CarryForward
from savos_job.config import JobConfig, parse_config
from savos_job.corpus import discover
from savos_job.labeler import TaskFeed, VideoLabeler
from savos_job.opener import OpenAhead, VideoOpener
from savos_job.prelabel import PrelabelActor, job_calibration
from savos_job.writer import VideoResult
from tests.conftest import write_dataset
from tests.jobs.invariants import output_at


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    videos = {"a": make_video(4, num_objects=2, seed=1), "b": make_video(3, seed=2)}
    return write_dataset(tmp_path / "corpus", videos, every=1000)  # first-frame masks only, as in a real corpus


def test_rows_decode_to_what_the_engine_produced(corpus: Path, tmp_path: Path, tiny_model: SAVOS) -> None:
    predictor = Predictor(tiny_model, device="cpu")
    out = str(tmp_path / "out")
    task = next(t for t in discover(str(corpus)) if t.video_id == "a")
    result = VideoLabeler(predictor, "tiny", output_at(out), run_id="20261203T101010Z-abcdef").run_one(task)
    assert (result.status, result.frames, result.objects) == ("done", 4, 2)
    assert run_id_of(pq.read_schema(output_at(out).masks("a"))) == "20261203T101010Z-abcdef"

    table = pq.read_table(output_at(out).masks("a")).to_pylist()
    assert len(table) == 4 * 2
    # The engine run directly on the same frames and first mask gives the same label maps.
    video = make_video(4, num_objects=2, seed=1)
    from savos.data.frames import FrameFolder

    frames = FrameFolder(corpus / "JPEGImages" / "480p" / "a")
    state = predictor.init_state(frames)
    for obj_id in (1, 2):
        predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
    for frame_idx, obj_ids, probs in predictor.propagate(state):
        expected = probs_to_ids(obj_ids, probs)
        for row in (r for r in table if r["frame_idx"] == frame_idx):
            np.testing.assert_array_equal(
                decode_row(row["rle_counts"], row["height"], row["width"]), expected == row["obj_id"]
            )
            assert row["frame_name"] == f"{frame_idx:05d}"
            assert row["model"] == "tiny"


def test_a_broken_frame_is_a_failure_record_not_an_exception(corpus: Path, tmp_path: Path, tiny_model: SAVOS) -> None:
    broken = corpus / "JPEGImages" / "480p" / "b" / "00001.jpg"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated JPEG
    out = str(tmp_path / "out")
    task = next(t for t in discover(str(corpus)) if t.video_id == "b")
    result = VideoLabeler(Predictor(tiny_model, device="cpu"), "tiny", output_at(out)).run_one(task)
    assert result.status == "failed"
    record = json.loads(Path(output_at(out).failure("b")).read_text())
    assert str(broken) in record["error"]
    assert record["error_type"] == "InputError"
    assert "Traceback" in record["traceback"]
    assert not Path(output_at(out).masks("b")).exists()


def test_videos_in_lockstep_write_what_one_at_a_time_writes(corpus: Path, tmp_path: Path, tiny_model: SAVOS) -> None:
    """Three videos, two at a time (the third joins when one ends), one of them broken: the two good ones get
    the same rows as when labelled alone, the broken one a failure record, and every video a result."""
    write_dataset(corpus, {"c": make_video(5, seed=3)}, every=1000)
    broken = corpus / "JPEGImages" / "480p" / "c" / "00002.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    tasks = sorted(discover(str(corpus)), key=lambda t: t.video_id)
    predictor = Predictor(tiny_model, device="cpu", precision="fp32")
    alone, together = str(tmp_path / "alone"), str(tmp_path / "together")
    for task in tasks:
        VideoLabeler(predictor, "tiny", output_at(alone)).run_one(task)
    results = list(VideoLabeler(predictor, "tiny", output_at(together), max_active=2).run(iter(tasks)))

    assert sorted((r.video_id, r.status, r.frames) for r in results) == [
        ("a", "done", 4),
        ("b", "done", 3),
        ("c", "failed", 0),
    ]
    assert str(broken) in json.loads(Path(output_at(together).failure("c")).read_text())["error"]
    for video_id in ("a", "b"):
        expected = pq.read_table(output_at(alone).masks(video_id)).to_pylist()
        got = pq.read_table(output_at(together).masks(video_id)).to_pylist()
        assert [(r["frame_idx"], r["obj_id"], r["rle_counts"]) for r in got] == [
            (r["frame_idx"], r["obj_id"], r["rle_counts"]) for r in expected
        ]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-5)


def test_online_adapted_videos_in_lockstep_write_what_one_at_a_time_writes(
    corpus: Path, tmp_path: Path, tiny_model: SAVOS
) -> None:
    """Four videos in one lock-step, each with its own online-adapted decoder: the rows each gets alone."""
    write_dataset(corpus, {"c": make_video(5, num_objects=3, seed=3), "d": make_video(2, seed=4)}, every=1000)
    tasks = sorted(discover(str(corpus)), key=lambda t: t.video_id)
    online = OnlineAdaptation(steps=2, lr=1e-3, crop=(32, 64), batch_size=1)
    predictor = Predictor(tiny_model, device="cpu", precision="fp32", quality=Quality(online=online))
    alone, together, plain = str(tmp_path / "alone"), str(tmp_path / "together"), str(tmp_path / "plain")
    for task in tasks:
        VideoLabeler(predictor, "tiny", output_at(alone)).run_one(task)
        VideoLabeler(Predictor(tiny_model, device="cpu", precision="fp32"), "tiny", output_at(plain)).run_one(task)
    results = list(VideoLabeler(predictor, "tiny", output_at(together), max_active=4).run(iter(tasks)))

    assert sorted((r.video_id, r.status) for r in results) == [(v, "done") for v in "abcd"]
    differ = 0
    for video_id in "abcd":
        expected = pq.read_table(output_at(alone).masks(video_id)).to_pylist()
        got = pq.read_table(output_at(together).masks(video_id)).to_pylist()
        assert [(r["frame_idx"], r["obj_id"], r["rle_counts"]) for r in got] == [
            (r["frame_idx"], r["obj_id"], r["rle_counts"]) for r in expected
        ]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-5)
        unadapted = pq.read_table(output_at(plain).masks(video_id)).to_pylist()
        differ += [r["score"] for r in got] != pytest.approx([r["score"] for r in unadapted], abs=1e-4)
    assert differ == 4  # every video went through a decoder of its own


def test_a_video_that_cannot_be_opened_is_recorded_and_the_next_joins(
    corpus: Path, tmp_path: Path, tiny_model: SAVOS
) -> None:
    tasks = sorted(discover(str(corpus)), key=lambda t: t.video_id)
    for path in (corpus / "Annotations" / "480p" / "a").iterdir():
        path.unlink()  # no first-frame mask
    out = str(tmp_path / "out")
    results = list(VideoLabeler(Predictor(tiny_model, device="cpu"), "tiny", output_at(out), max_active=1).run(tasks))
    assert sorted((r.video_id, r.status) for r in results) == [("a", "failed"), ("b", "done")]
    assert Path(output_at(out).failure("a")).exists()
    assert Path(output_at(out).masks("b")).exists()


def test_the_actor_runs_its_torch_work_on_one_thread_of_its_own(tmp_path: Path, tiny_model: SAVOS) -> None:
    """Ray builds the actor on one thread and runs its calls on another; torch work from two threads makes
    libgomp put its CPU threads to sleep between kernels (0.75x the speed), so the actor keeps one of its own."""
    torch_threads: set[int] = set()

    class Recorded(CarryForward):
        def _predict_many(self, steps: list[Any]) -> list[torch.Tensor]:
            torch_threads.add(threading.get_ident())
            return super()._predict_many(steps)

    class Actor(PrelabelActor):
        def make_predictor(self, job: JobConfig) -> tuple[Predictor, dict[str, Any]]:
            torch_threads.add(threading.get_ident())
            return Recorded(tiny_model, device="cpu"), {"checkpoint_id": "tiny"}

    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, num_objects=2, seed=1)})
    config = JobConfig(input=str(corpus), output=str(tmp_path / "out"))
    actor = Actor(config.to_dict())
    (task,) = discover(config.input, config.layout)
    rows: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: rows.append(asyncio.run(actor.label_video(task.to_json()))))
    caller.start()
    caller.join()
    actor.close()
    assert [row["status"] for row in rows] == ["done"]
    assert len(torch_threads) == 1  # the constructor's and the calls' torch work share one thread...
    assert torch_threads.isdisjoint({threading.get_ident(), caller.ident})  # ...which is neither caller's


def test_the_jobs_engine_options_reach_the_actors_predictor(tmp_path: Path) -> None:
    """``--compile`` and ``--max-pass-pixels`` reach the actor's predictor (compilation itself is lazy: nothing
    runs here); without them, no compilation and the device's default budget."""
    for flags, compiled, budget in (
        ([], False, CPU_PASS_PIXELS),
        (["--compile", "--max-pass-pixels", "12345"], True, 12345),
    ):
        config = parse_config(["--input", str(tmp_path), "--output", str(tmp_path / "out"), *flags])
        actor = PrelabelActor(config.to_dict())
        try:
            assert actor.labeler.predictor.compiled is compiled
            assert actor.labeler.predictor.max_pass_pixels == budget
        finally:
            actor.close()


def test_a_video_handed_in_mid_run_joins_the_running_lockstep(
    corpus: Path, tmp_path: Path, tiny_model: SAVOS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The actor's calls arrive while its lock-step runs: a video handed in then joins the next frame's batch
    instead of waiting for the running ones to end; with nothing handed in, the running ones go on without
    waiting for the feed; each result goes to its own reply."""
    a, b = sorted(discover(str(corpus)), key=lambda t: t.video_id)  # 4 and 3 frames
    feed = TaskFeed()
    batches: list[list[int]] = []
    results: dict[str, VideoResult] = {}
    b_opened = threading.Event()
    put_opened = OpenAhead._put

    def put_and_tell(opener: OpenAhead, item: object) -> bool:
        queued = put_opened(opener, item)
        if isinstance(item, tuple) and item[0].task == b:
            b_opened.set()
        return queued

    # b is opened on the opener thread: the first step waits for it, or b's joining would race the network
    monkeypatch.setattr(OpenAhead, "_put", put_and_tell)

    class Recorded(CarryForward):
        def _predict_many(self, steps: list[Any]) -> list[torch.Tensor]:
            if not batches:  # b arrives while a's first frame (its annotated one) runs
                feed.put(b, lambda result: results.update(b=result))
                assert b_opened.wait(timeout=30), "b was never opened"
            batches.append([step.frame_idx for step in steps])  # the tracked frames: annotated ones are not run
            return super()._predict_many(steps)

    def a_done(result: VideoResult) -> None:  # a ends after b, with the feed empty: nothing would close it
        results.update(a=result)  # if the lock-step waited on the feed while a still ran
        feed.close()

    labeler = VideoLabeler(Recorded(tiny_model, device="cpu"), "tiny", output_at(str(tmp_path / "out")), max_active=2)
    feed.put(a, a_done)
    serving = threading.Thread(target=labeler.serve, args=(feed,), daemon=True)
    serving.start()
    serving.join(timeout=60)
    assert not serving.is_alive(), "the lock-step waited for the feed while a video was running"
    # b's annotated frame went with a's frame 1, its frames 1 and 2 beside a's 2 and 3: it joined at once
    assert batches == [[], [1], [2, 1], [3, 2]]
    assert {k: (r.video_id, r.status, r.frames) for k, r in results.items()} == {
        "a": ("a", "done", 4),
        "b": ("b", "done", 3),
    }


def test_videos_are_opened_beside_the_network_not_in_its_way(corpus: Path, tmp_path: Path, tiny_model: SAVOS) -> None:
    """Opening a video (listing its folder, downloading a file or masks: storage round trips) happens on a thread
    of its own: while b is being opened, a's frames go on through the network."""
    a, b = sorted(discover(str(corpus)), key=lambda t: t.video_id)
    a_ran_frame_2 = threading.Event()
    in_time: list[bool] = []

    class Recorded(CarryForward):
        def _predict_many(self, steps: list[Any]) -> list[torch.Tensor]:
            if any(step.frame_idx == 2 for step in steps):
                a_ran_frame_2.set()
            return super()._predict_many(steps)

    class SlowStorage(VideoOpener):
        def open(self, video: Any) -> Any:
            if video.task.video_id == "b":  # b's storage answers only once a has moved on two frames
                in_time.append(a_ran_frame_2.wait(timeout=10))
            return super().open(video)

    labeler = VideoLabeler(Recorded(tiny_model, device="cpu"), "tiny", output_at(str(tmp_path / "out")), max_active=2)
    labeler.opener = SlowStorage(labeler.predictor, labeler.opener.retry)
    results = list(labeler.run([a, b]))
    assert in_time == [True], "the network waited for b to be opened"
    assert sorted((r.video_id, r.status) for r in results) == [("a", "done"), ("b", "done")]


def test_an_error_that_is_no_videos_own_fails_the_actors_calls(
    tmp_path: Path, tiny_model: SAVOS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken device (here: the network raising) ends the actor's lock-step: the waiting call and every later
    call raise it, instead of waiting forever or passing for a video's failure."""

    class Broken(CarryForward):
        def _predict_many(self, steps: list[Any]) -> list[torch.Tensor]:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    class Actor(PrelabelActor):
        def make_predictor(self, job: JobConfig) -> tuple[Predictor, dict[str, Any]]:
            return Broken(tiny_model, device="cpu"), {"checkpoint_id": "tiny"}

    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, num_objects=2, seed=1)})
    config = JobConfig(input=str(corpus), output=str(tmp_path / "out"))
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    actor = Actor(config.to_dict())
    (task,) = discover(config.input, config.layout)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        asyncio.run(actor.label_video(task.to_json()))
    with pytest.raises(RuntimeError, match="stopped") as later:
        asyncio.run(actor.label_video(task.to_json()))
    assert "illegal memory access" in str(later.value.__cause__)
    actor.close()
    assert not list(staging.iterdir()), "the abandoned video's staging is left"


def test_with_a_calibration_every_row_carries_its_expected_j(corpus: Path, tmp_path: Path, tiny_model: SAVOS) -> None:
    calibration = JCalibration((0.2, 0.9), (0.1, 0.8))
    out = str(tmp_path / "out")
    task = next(t for t in discover(str(corpus)) if t.video_id == "a")
    labeler = VideoLabeler(Predictor(tiny_model, device="cpu"), "tiny", output_at(out), calibration=calibration)
    assert labeler.run_one(task).status == "done"
    video = read_video_masks(out, "a")
    assert video.estimates is not None
    for obj_id in video.obj_ids:
        np.testing.assert_allclose(video.estimates[obj_id], calibration.estimate(video.scores[obj_id]), atol=1e-6)
        np.testing.assert_array_equal(video.priority_scores(obj_id), video.estimates[obj_id])


def test_the_job_takes_the_calibration_of_its_preset_and_none_for_changed_options() -> None:
    calibration = JCalibration((0.2, 0.9), (0.1, 0.8))
    meta = {CALIBRATION_KEY: {"fast": calibration.to_dict()}}
    assert job_calibration(JobConfig(input="in/", output="out/"), meta) == calibration
    assert job_calibration(JobConfig(input="in/", output="out/", quality="balanced"), meta) is None
    assert job_calibration(JobConfig(input="in/", output="out/", scales=(0.5, 1.0)), meta) is None


def test_backward_propagation_in_lockstep_equals_one_video_at_a_time(tmp_path: Path, tiny_model: SAVOS) -> None:
    videos = {name: make_video(5, num_objects=2, seed=seed) for name, seed in (("p", 11), ("q", 12), ("r", 13))}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    for name, video in videos.items():  # object 2 appears at frame 3: annotated there only
        masks = corpus / "Annotations" / "480p" / name
        write_palette_png(masks / "00000.png", np.where(video.masks[0] == 1, 1, 0).astype(np.uint8))
        write_palette_png(masks / "00003.png", np.where(video.masks[3] == 2, 2, 0).astype(np.uint8))
    predictor = Predictor(tiny_model, device="cpu")
    tasks = sorted(discover(str(corpus)), key=lambda t: t.video_id)
    alone, together = str(tmp_path / "alone"), str(tmp_path / "together")
    for task in tasks:
        assert VideoLabeler(predictor, "tiny", output_at(alone), backward=True).run_one(task).status == "done"
    labeler = VideoLabeler(predictor, "tiny", output_at(together), max_active=2, backward=True)
    assert [r.status for r in labeler.run(iter(tasks))] == ["done"] * 3
    for name in videos:
        one, many = read_video_masks(alone, name), read_video_masks(together, name)
        assert all((one.ids[t] == 2).any() for t in range(3))  # object 2 before its annotation
        np.testing.assert_array_equal(many.ids, one.ids)
