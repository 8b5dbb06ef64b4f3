"""The job end to end against a real S3 server (SeaweedFS): a corpus uploaded, labelled, read back, resumed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import s3fs

from savos.checkpoint import save_checkpoint
from savos.data import write_palette_png
from savos.data.synthetic import make_video
from savos.io.corrections import Correction, CorrectionStore
from savos.model import SAVOS
from savos_job.prelabel import EXIT_SOME_FAILED, main
from tests.conftest import write_dataset, write_mp4
from tests.jobs.invariants import assert_accounted
from tests.jobs.outputs import engine_masks, read_masks
from tests.s3server import READER_KEY, READER_SECRET, SECRET_KEY, SeaweedS3

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

    # Resume: nothing new is written; only the staging-free final objects exist under the prefix. The failed video
    # is not retried without --retry-failed, and still has no masks: status 3.
    before = {p: s3.info(p)["LastModified"] for p in s3.find("labels/run/masks")}
    assert job("davis") == EXIT_SOME_FAILED
    assert {p: s3.info(p)["LastModified"] for p in s3.find("labels/run/masks")} == before
    assert all(p.endswith("/part-0.parquet") for p in before)


def test_an_output_prefix_with_glob_characters_keeps_one_outcome_per_video(
    ray_local, s3: s3fs.S3FileSystem, tmp_path: Path, tiny_model: SAVOS
) -> None:
    """``fs.rm`` expands ``[1]``: a retried video's old failure record stayed beside its new masks."""
    save_checkpoint(checkpoint := tmp_path / "tiny.pt", tiny_model, meta={"checkpoint_id": "tiny"})
    videos = {"a": make_video(3, seed=1), "b": make_video(3, seed=2)}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    frame = corpus / "JPEGImages" / "480p" / "b" / "00001.jpg"
    good = frame.read_bytes()
    frame.write_bytes(b"")
    s3.mkdir("globs")
    out = "s3://globs/v[1]"
    args = ["--input", str(corpus), "--output", out, "--checkpoint", str(checkpoint)]
    assert main(args) == EXIT_SOME_FAILED
    assert assert_accounted(out, list(videos)) == ({"a"}, {"b"})
    frame.write_bytes(good)
    assert main([*args, "--retry-failed"]) == 0
    s3fs.S3FileSystem.clear_instance_cache()  # this process's listings of the output are from before the rerun
    assert assert_accounted(out, list(videos)) == ({"a", "b"}, set())


def test_credentials_that_cannot_write_the_output_exit_2_before_anything_starts(
    s3_server: SeaweedS3,
    s3: s3fs.S3FileSystem,
    tmp_path: Path,
    tiny_model: SAVOS,
    monkeypatch: pytest.MonkeyPatch,
    ray_must_not_start: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    save_checkpoint(checkpoint := tmp_path / "tiny.pt", tiny_model, meta={"checkpoint_id": "tiny"})
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, seed=1)}, every=1000)
    s3.mkdir("read-only")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READER_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READER_SECRET)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        status = main(["--input", str(corpus), "--output", "s3://read-only/run", "--checkpoint", str(checkpoint)])
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert status == 2
    err = capsys.readouterr().err
    assert "s3://read-only/run: the output cannot be written (PermissionError" in err
    assert READER_SECRET not in err


def test_a_rerun_with_corrections_labels_only_the_corrected_video_and_the_store_copies_the_rest(
    ray_local, s3: s3fs.S3FileSystem, tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    truth = {name: make_video(5, num_objects=2, seed=seed) for seed, name in enumerate("abcd", start=10)}
    corpus = write_dataset(tmp_path / "corpus", truth, every=1000)  # first-frame masks only
    s3.mkdir("versions")

    def job(version: str, *extra: str) -> int:
        args = ["--input", str(corpus), "--output", f"s3://versions/{version}", "--checkpoint", str(checkpoint)]
        return main([*args, "--preview-every", "1", *extra])

    def summary(version: str) -> dict[str, object]:
        (path,) = s3.ls(f"versions/{version}/_runs", refresh=True)
        return dict(json.loads(s3.cat_file(path)))

    assert job("v1") == 0
    v1 = read_masks("s3://versions/v1")
    fix = truth["b"].masks[3] == 1  # the person's fix: object 1 of b on frame 3
    assert not np.array_equal(fix, v1["b"][3] == 1)
    CorrectionStore("s3://versions/corrections").add("b", [Correction(3, "00003", 1, fix)])

    copies: list[tuple[str, str]] = []
    copy_object = s3fs.S3FileSystem._copy_basic  # s3fs's one CopyObject request

    async def spy(self: s3fs.S3FileSystem, path1: str, path2: str, **kwargs: object) -> object:
        copies.append((path1, path2))
        return await copy_object(self, path1, path2, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_copy_basic", spy)
    carry = ["--corrections", "s3://versions/corrections", "--carry-from", "s3://versions/v1"]
    assert job("v2", *carry) == 0
    v2_summary = summary("v2")
    assert (v2_summary["videos_done"], v2_summary["videos_carried"]) == (1, 3)
    assert v2_summary["videos_with_new_corrections"] == {"count": 1, "first": ["b"]}
    # The others were copied by the server (CopyObject), byte for byte: masks and previews.
    assert sorted(to.split("/")[2] for _, to in copies) == ["masks"] * 3 + ["previews"] * 3
    for source, copy in copies:
        assert s3.cat_file(copy) == s3.cat_file(source)
    v2 = read_masks("s3://versions/v2")
    for t in range(3):
        np.testing.assert_array_equal(v2["b"][t], v1["b"][t])  # before the fix: as before
    np.testing.assert_array_equal(v2["b"][3] == 1, fix)  # on its frame: the fix

    # Corrections already in the version carried from are not new: a third version recomputes nothing.
    carry[-1] = "s3://versions/v2"
    assert job("v3", *carry) == 0
    v3_summary = summary("v3")
    assert (v3_summary["videos_done"], v3_summary["videos_carried"]) == (0, 4)
    assert read_masks("s3://versions/v3").keys() == v2.keys()
    assert s3.cat_file("versions/v3/masks/video_id=b/part-0.parquet") == s3.cat_file(
        "versions/v2/masks/video_id=b/part-0.parquet"
    )


def test_carrying_from_an_output_of_other_settings_is_refused_before_anything_starts(
    s3: s3fs.S3FileSystem,
    tmp_path: Path,
    checkpoint: Path,
    ray_must_not_start: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, seed=1)}, every=1000)
    s3.mkdir("other-settings")
    s3.pipe_file(
        "other-settings/v1/_runs/20261203T000000Z-abcdef.json",
        json.dumps(
            {
                "config": {"checkpoint": str(checkpoint), "max_pixels": 1920 * 1080, "max_objects": 64},
                "test_time": {"scales": [0.5, 1.0], "flip": True, "online_steps": 0},
            }
        ).encode(),
    )
    args = ["--input", str(corpus), "--output", "s3://other-settings/v2", "--checkpoint", str(checkpoint)]
    assert main([*args, "--carry-from", "s3://other-settings/v1"]) == 2
    err = capsys.readouterr().err
    assert "s3://other-settings/v1: labelled with other settings (test_time:" in err
    assert main([*args, "--carry-from", "s3://other-settings/nothing-here"]) == 2
    assert "s3://other-settings/nothing-here: no run summary under _runs/" in capsys.readouterr().err
    assert not s3.exists("other-settings/v2/masks")
