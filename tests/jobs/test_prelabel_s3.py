"""The job end to end against a real S3 server (SeaweedFS): a corpus uploaded, labelled, read back, resumed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import s3fs

from jobs.prelabel import EXIT_SOME_FAILED, main
from savos.checkpoint import save_checkpoint
from savos.data import write_palette_png
from savos.data.synthetic import make_video
from savos.model import SAVOS
from tests.conftest import write_dataset, write_mp4
from tests.jobs.outputs import engine_masks, read_masks
from tests.s3server import SECRET_KEY, SeaweedS3

pytestmark = [pytest.mark.ray, pytest.mark.s3]


@pytest.fixture(scope="module")
def ray_local(s3_server: SeaweedS3):
    """Started after the S3 fixture exported ``AWS_*``, so the workers inherit them as a user's local Ray does."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def s3(s3_server: SeaweedS3) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(skip_instance_cache=True)  # endpoint and keys from the environment


def test_s3_corpus_labelled_every_frame_matches_the_engine(
    ray_local, s3: s3fs.S3FileSystem, tmp_path: Path, tiny_model: SAVOS
) -> None:
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, tiny_model, meta={"checkpoint_id": "tiny"})
    videos = {"a": make_video(4, num_objects=2, seed=1), "b": make_video(3, num_objects=3, seed=2)}
    local = write_dataset(tmp_path / "corpus", videos, every=1000)
    broken = make_video(3, seed=3)
    write_dataset(local, {"c": broken}, every=1000)
    (local / "JPEGImages" / "480p" / "c" / "00001.jpg").write_bytes(b"")  # a zero-byte frame
    clips = tmp_path / "clips"
    clips.mkdir()
    clip = make_video(5, num_objects=2, seed=4)
    write_mp4(clips / "clip.mp4", clip.frames)
    write_palette_png(clips / "clip.png", clip.masks[0])

    s3.mkdir("corpus")
    s3.put(str(local) + "/", "corpus/davis/", recursive=True)
    s3.put(str(clips) + "/", "corpus/clips/", recursive=True)
    s3.mkdir("labels")
    s3.put_file(str(checkpoint), "labels/models/tiny.pt")

    def job(corpus: str, *extra: str) -> int:
        args = ["--input", f"s3://corpus/{corpus}", "--output", "s3://labels/run", "--num-actors", "2"]
        return main([*args, "--checkpoint", "s3://labels/models/tiny.pt", *extra])

    assert job("davis") == EXIT_SOME_FAILED
    assert job("clips") == 0

    written = read_masks("s3://labels/run")
    assert sorted(written) == ["a", "b", "clip"]
    for video_id in ("a", "b"):
        expected = engine_masks(checkpoint, local / "JPEGImages" / "480p" / video_id, videos[video_id].masks[0])
        assert sorted(written[video_id]) == list(range(len(videos[video_id].frames)))
        for t, ids in expected.items():
            np.testing.assert_array_equal(written[video_id][t], ids, err_msg=f"{video_id} frame {t}")
    expected = engine_masks(checkpoint, clips / "clip.mp4", clip.masks[0])
    assert sorted(written["clip"]) == list(range(5))
    for t, ids in expected.items():
        np.testing.assert_array_equal(written["clip"][t], ids, err_msg=f"clip frame {t}")

    record = json.loads(s3.cat_file("labels/run/failures/c.json"))
    assert record["error"].startswith("s3://corpus/davis/JPEGImages/480p/c/00001.jpg")
    summaries = [json.loads(s3.cat_file(p)) for p in s3.ls("labels/run/_runs")]
    assert sorted((s["videos_done"], s["videos_failed"]) for s in summaries) == [(1, 0), (2, 1)]
    for text in [json.dumps(summaries), json.dumps(record)]:
        assert SECRET_KEY not in text

    # Resume: nothing new is written; only the staging-free final objects exist under the prefix.
    before = {p: s3.info(p)["LastModified"] for p in s3.find("labels/run/masks")}
    assert job("davis") == 0
    assert {p: s3.info(p)["LastModified"] for p in s3.find("labels/run/masks")} == before
    assert all(p.endswith("/part-0.parquet") for p in before)
