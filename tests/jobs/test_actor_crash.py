"""An actor process that dies mid-video is replaced by Ray, and the video is redone: its output exists once and
equals an undisturbed run's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from savos.checkpoint import save_checkpoint
from savos.data.synthetic import make_video
from savos.model import SAVOS
from savos_job.prelabel import main
from tests.conftest import write_dataset
from tests.jobs.invariants import assert_accounted
from tests.jobs.outputs import engine_masks, read_masks

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]


def test_a_dead_actor_is_replaced_and_its_video_redone(tmp_path: Path, tiny_model: SAVOS) -> None:
    ray = pytest.importorskip("ray")
    marker = tmp_path / "crashed"
    env = {"SAVOS_CRASH_VIDEO": "b", "SAVOS_CRASH_MARKER": str(marker), "PYTHONPATH": str(ROOT)}
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env, "worker_process_setup_hook": "tests.jobs.crash.install"},
    )
    try:
        checkpoint = tmp_path / "tiny.pt"
        save_checkpoint(checkpoint, tiny_model, meta={"checkpoint_id": "tiny"})
        videos = {name: make_video(3, num_objects=2, seed=seed) for seed, name in enumerate("abc")}
        corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
        out = tmp_path / "out"
        args = ["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint), "--num-actors", "1"]
        assert main(args) == 0
    finally:
        ray.shutdown()

    assert marker.exists(), "the actor never crashed: the test proved nothing"
    written = read_masks(str(out))
    assert sorted(written) == ["a", "b", "c"]
    for name, video in videos.items():
        expected = engine_masks(checkpoint, corpus / "JPEGImages" / "480p" / name, video.masks[0])
        assert written[name].keys() == expected.keys()
        for t, ids in expected.items():
            np.testing.assert_array_equal(written[name][t], ids, err_msg=f"{name} frame {t}")
    assert assert_accounted(str(out), list(videos)) == (set(videos), set())
    (summary,) = [json.loads(p.read_text()) for p in (out / "_runs").iterdir()]
    assert (summary["videos_done"], summary["videos_failed"]) == (3, 0)
