"""Faults survived on real components: the driver killed, a node lost, the S3 server stopped and restarted (or
gone for good). After each, every video is accounted for exactly once (tests/jobs/invariants.py) and the masks
equal those of an undisturbed run (the engine run directly on the same frames)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import s3fs

from savos.checkpoint import save_checkpoint
from savos.data.synthetic import SyntheticVideo, make_video
from savos.model import SAVOS
from savos_job.prelabel import EXIT_STORAGE, main
from tests.conftest import write_dataset
from tests.jobs.invariants import assert_accounted, failure_records, output_at
from tests.jobs.outputs import engine_masks, read_masks
from tests.s3server import SeaweedS3

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def corpus(tmp_path: Path, tiny_model: SAVOS) -> tuple[Path, Path, dict[str, SyntheticVideo]]:
    videos = {f"v{i}": make_video(16, num_objects=2, seed=i) for i in range(6)}
    root = write_dataset(tmp_path / "corpus", videos, every=1000)
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, tiny_model, meta={"checkpoint_id": "tiny"})
    return root, checkpoint, videos


def _assert_undisturbed(output: str, root: Path, checkpoint: Path, videos: dict[str, SyntheticVideo]) -> None:
    labelled, failed = assert_accounted(output, list(videos))
    assert (labelled, failed) == (set(videos), set())
    written = read_masks(output)
    for name, video in videos.items():
        expected = engine_masks(checkpoint, root / "JPEGImages" / "480p" / name, video.masks[0])
        assert written[name].keys() == expected.keys()
        for t, ids in expected.items():
            np.testing.assert_array_equal(written[name][t], ids, err_msg=f"{name} frame {t}")


def _when(condition: Callable[[], bool], action: Callable[[], None], timeout: float = 120) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``condition`` holds."""

    def holds() -> bool:
        try:
            return condition()
        except Exception:  # the condition reads storage, which may be the thing that is down
            return False

    def wait_then_act() -> None:
        deadline = time.monotonic() + timeout
        while not holds() and time.monotonic() < deadline:
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def _done(output: str, videos: dict[str, SyntheticVideo]) -> int:
    import fsspec

    fs, _ = fsspec.core.url_to_fs(output)
    return sum(fs.exists(output_at(output).masks(name)) for name in videos)


def test_driver_killed_mid_run_then_a_rerun_finishes_only_the_rest(corpus, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    root, checkpoint, videos = corpus
    out = str(tmp_path / "out")
    args = ["--input", str(root), "--output", out, "--checkpoint", str(checkpoint), "--num-actors", "1"]
    # The cluster outlives its driver, as with `--address auto` on a real cluster; Ray ends the dead driver's actors.
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        command = [sys.executable, "-m", "savos_job.prelabel", *args, "--address", context.address_info["address"]]
        driver = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while _done(out, videos) < 1 and time.monotonic() < deadline and driver.poll() is None:
                time.sleep(0.05)
        finally:
            driver.send_signal(signal.SIGKILL)  # no goodbye, no summary
            driver.wait()
        _wait_until_no_actor_lives(ray)  # the orphaned actor might write one more video otherwise
        done_before = _done(out, videos)
        assert 1 <= done_before < len(videos), "the kill did not land mid-run: the test proved nothing"
        assert main(args) == 0, failure_records(out)
    finally:
        ray.shutdown()
    runs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "_runs").iterdir()]
    assert [r["videos_done"] for r in runs] == [len(videos) - done_before]  # the killed run wrote no summary
    _assert_undisturbed(out, root, checkpoint, videos)


def _wait_until_no_actor_lives(ray: Any, timeout: float = 60) -> None:
    """Until Ray has ended every actor of the cluster (its GCS table: the state API needs the dashboard)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = ray._private.state.state.actor_table(None)
        if all(actor["State"] == "DEAD" for actor in table.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"actors still alive {timeout}s after their driver was killed")


def test_a_node_lost_mid_run_the_job_completes(corpus, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    root, checkpoint, videos = corpus
    out = str(tmp_path / "out")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "_system_config": {
                "health_check_period_ms": 500,
                "health_check_failure_threshold": 3,
                "health_check_initial_delay_ms": 0,
            },
        },
    )
    workers = [cluster.add_node(num_cpus=1, num_gpus=2) for _ in range(2)]  # fake GPUs: Ray only counts them
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    removed: list[int] = []

    def remove_busiest() -> None:
        removed.append(_done(out, videos))
        cluster.remove_node(workers[0], allow_graceful=False)

    try:
        thread = _when(lambda: _done(out, videos) >= 1, remove_busiest)
        args = ["--input", str(root), "--output", out, "--checkpoint", str(checkpoint)]
        args += ["--num-actors", "2", "--gpus-per-actor", "1", "--cpus-per-actor", "0.5"]
        assert main(args) == 0, failure_records(out)
        thread.join()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed, "the node was never removed"
    assert removed[0] < len(videos), "the node went after the run: the test proved nothing"
    _assert_undisturbed(out, root, checkpoint, videos)


@pytest.fixture
def own_s3(stoppable_s3: SeaweedS3) -> Iterator[SeaweedS3]:
    """An S3 server of this test's own (it gets stopped), and a Ray whose workers read its endpoint from the
    environment."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield stoppable_s3
    ray.shutdown()


def _upload(root: Path, checkpoint: Path) -> s3fs.S3FileSystem:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("corpus")
    fs.put(str(root) + "/", "corpus/davis/", recursive=True)
    fs.put_file(str(checkpoint), "corpus/tiny.pt")
    fs.mkdir("labels")
    return fs


def test_storage_outage_is_retried_and_the_run_completes(corpus, own_s3: SeaweedS3) -> None:
    root, checkpoint, videos = corpus
    _upload(root, checkpoint)
    out = "s3://labels/run"
    outage: list[int] = []

    def outage_of_a_few_seconds() -> None:
        outage.append(_done(out, videos))
        own_s3.stop(grace=0)
        time.sleep(3)
        own_s3.start()

    thread = _when(lambda: _done(out, videos) >= 1, outage_of_a_few_seconds)
    args = ["--input", "s3://corpus/davis", "--output", out, "--checkpoint", "s3://corpus/tiny.pt"]
    assert main([*args, "--num-actors", "2"]) == 0, failure_records(out)
    thread.join()
    assert outage, "the server was never stopped"
    assert outage[0] < len(videos), "the outage came after the run: the test proved nothing"
    _assert_undisturbed(out, root, checkpoint, videos)


def test_storage_down_for_good_stops_with_a_clear_message_and_loses_nothing(
    corpus, own_s3: SeaweedS3, caplog: pytest.LogCaptureFixture
) -> None:
    root, checkpoint, videos = corpus
    _upload(root, checkpoint)
    out = "s3://labels/run"
    args = ["--input", "s3://corpus/davis", "--output", out, "--checkpoint", "s3://corpus/tiny.pt"]
    thread = _when(lambda: _done(out, videos) >= 1, lambda: own_s3.stop(grace=0))
    # Three videos, no retries of our own (s3fs still tries each call a few times): the failing ones are slow.
    assert main([*args, "--num-actors", "1", "--storage-retries", "1", "--max-videos", "3"]) == EXIT_STORAGE
    thread.join()
    assert "rerun with the same output to finish them" in caplog.text

    own_s3.start()  # storage is back: the rerun finishes what the first run could not
    assert main(args) == 0
    _assert_undisturbed(out, root, checkpoint, videos)
