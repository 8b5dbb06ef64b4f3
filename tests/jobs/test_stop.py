"""Stopping: SIGTERM (what Kubernetes sends) and SIGINT end the run cleanly, with a summary that says so, and no
labelling process outlives its job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from savos.data.synthetic import make_video
from tests.conftest import write_dataset
from tests.jobs.invariants import assert_accounted

ROOT = Path(__file__).resolve().parents[2]


def _actor_processes() -> list[int]:
    """Live processes that are Ray actors of the job (Ray names them ``ray::PrelabelActor...``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if cmdline.startswith(b"ray::PrelabelActor") and state != "Z":
            found.append(int(proc.name))
    return found


def test_the_compute_thread_never_keeps_an_actor_process_alive(tmp_path: Path, checkpoint: Path) -> None:
    """A worker told to exit while its lock-step waits for the next video: the interpreter must not wait for the
    compute thread (a ThreadPoolExecutor's worker is joined at exit, and the process stayed, holding the model)."""
    script = (
        "import sys\n"
        "from savos_job.prelabel import PrelabelActor\n"
        "actor = PrelabelActor({'input': 'unused', 'output': sys.argv[2], 'checkpoint': sys.argv[1]})\n"
        "assert actor.labeler is not None\n"
        "sys.exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(checkpoint), str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        timeout=240,  # the model loads in seconds; without the fix the process never exits
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_cleanly(tmp_path: Path, checkpoint: Path, signum: signal.Signals) -> None:
    videos = {f"v{i}": make_video(12, seed=i) for i in range(6)}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "savos_job.prelabel", "--input", str(corpus), "--output", str(out)]
    command += ["--checkpoint", str(checkpoint), "--num-actors", "1", "--cpus-per-actor", "1"]
    log = tmp_path / "driver.log"
    with log.open("wb") as sink:
        driver = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not list(out.glob("masks/*/part-0.parquet")):
                assert driver.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "no video labelled in time"
                time.sleep(0.2)
            driver.send_signal(signum)
            status = driver.wait(timeout=120)
        finally:
            if driver.poll() is None:
                driver.kill()
    text = log.read_text()
    assert status == 128 + signum, text[-3000:]
    assert "Traceback" not in text
    assert "*** SIG" not in text
    (summary_path,) = (out / "_runs").glob("*.json")
    summary = json.loads(summary_path.read_text())
    assert summary["stopped"] == signal.Signals(signum).name
    assert summary["interrupted"] is True
    assert summary["videos_done"] < len(videos)

    deadline = time.monotonic() + 30  # the Ray instance the driver started ends with it: its actors too
    while _actor_processes():
        assert time.monotonic() < deadline, f"actor processes outlived the job: {_actor_processes()}"
        time.sleep(0.2)

    if signum == signal.SIGTERM:  # the rerun finishes what was left
        rerun = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300, check=False)
        assert rerun.returncode == 0, rerun.stdout.decode()[-3000:]
        assert assert_accounted(str(out), list(videos))[0] == set(videos)
