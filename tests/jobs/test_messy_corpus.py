"""The job on corpora and outputs as users have them, one local Ray instance: a hand-made manifest with odd ids
and bad rows, an output that refuses writes before or during the run, a resume over an output another tool
touched, and a cluster too small for the actors asked for."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from savos.data import write_palette_png
from savos.data.synthetic import make_video
from savos.io import read_video_masks
from savos_job.prelabel import EXIT_SOME_FAILED, EXIT_STORAGE, describe_refusal, main
from tests.conftest import write_dataset
from tests.jobs.invariants import assert_accounted, failure_records, output_at

pytestmark = pytest.mark.ray

LONG_CJK = "熊猫" * 15  # 30 characters, 270 bytes percent-encoded


def _clip(root: Path, name: str, frames: int = 3, sixteen_bit: bool = False) -> tuple[str, str]:
    """A clip's frames and first-frame mask under ``root/name``, as paths relative to ``root``."""
    video = make_video(frames, num_objects=2, seed=len(name))
    (root / name / "frames").mkdir(parents=True)
    for t, frame in enumerate(video.frames):
        if sixteen_bit:
            Image.fromarray(frame.mean(axis=2).astype(np.uint16) * 257).save(root / name / "frames" / f"{t}.png")
        else:
            Image.fromarray(frame).save(root / name / "frames" / f"{t:05d}.jpg")
    write_palette_png(root / name / "first.png", video.masks[0])
    return f"{name}/frames", f"{name}/first.png"


def test_a_hand_made_manifest_is_labelled_row_by_row(
    ray_local, tmp_path: Path, checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = tmp_path / "corpus"
    rows: list[dict[str, str]] = []
    for video_id, folder, sixteen in [
        ("00042", "a", False),
        ("042", "b", False),
        ("0", "c", False),
        (LONG_CJK, "d", False),
        ("deep", "e", True),
    ]:
        frames, masks = _clip(corpus, folder, sixteen_bit=sixteen)
        rows.append({"video_id": video_id, "frames": frames, "masks": masks})
    forged = "dup\n2026-12-03 INFO savos_job.prelabel: videos done 999"
    rows += [
        {"video_id": "no-masks", "frames": "a/frames", "masks": ""},
        {"video_id": "no-annotations", "frames": "a/frames", "masks": "a/annotations"},
        {"video_id": "", "frames": "b/frames", "masks": "b/first.png"},
        {"video_id": "web", "frames": "http://alice:s3cr3t@127.0.0.1:9/v", "masks": "a/first.png"},
        {"video_id": forged, "frames": "a/frames", "masks": "a/first.png"},
        {"video_id": forged, "frames": "a/frames", "masks": "a/first.png"},
    ]
    manifest = corpus / "lists" / "manifest.csv"
    manifest.parent.mkdir()
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video_id", "frames", "masks"])
        writer.writeheader()
        writer.writerows({**row, "frames": _up(row["frames"]), "masks": _up(row["masks"])} for row in rows)
    out = tmp_path / "out"

    with caplog.at_level(logging.INFO):
        status = main(["--input", str(manifest), "--output", str(out), "--checkpoint", str(checkpoint)])
    assert status == EXIT_SOME_FAILED, failure_records(str(out))

    labelled = ["00042", "042", "0", LONG_CJK, "deep", forged]
    done, failed = assert_accounted(str(out), [*labelled, "no-masks", "no-annotations", "web"])
    assert done == set(labelled)
    assert failed == {"no-masks", "no-annotations", "web"}
    for video_id in labelled:
        video = read_video_masks(str(out), video_id)
        assert video.ids.shape[0] == 3, video_id
    long_key = output_at(str(out)).masks(LONG_CJK)
    assert len(Path(long_key).parent.name.encode()) < 200
    records = failure_records(str(out))
    assert "needs masks" in records["no-masks"]
    assert records["no-annotations"].endswith(
        "a/annotations: no masks: neither a folder of masks named so nor a first-frame mask .png beside it"
    )
    assert "scheme http:// is not allowed" in records["web"]
    (summary_path,) = (out / "_runs").glob("*.json")
    summary = json.loads(summary_path.read_text())
    assert summary["manifest_rows_refused"]["count"] == 3  # no masks, no id, a foreign scheme
    assert summary["duplicate_ids_skipped"]["count"] == 1
    everything = summary_path.read_text() + json.dumps(records) + caplog.text
    assert "s3cr3t" not in everything
    assert not any("\n" in r.getMessage() for r in caplog.records if r.name.startswith("savos_job"))


def _up(relative: str) -> str:
    """A path relative to the manifest's folder (``lists/``); URIs as they are."""
    return f"../{relative}" if relative and "://" not in relative else relative


def test_an_output_that_cannot_be_written_exits_2_before_anything_starts(
    tmp_path: Path, checkpoint: Path, ray_must_not_start: None, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, seed=1)}, every=1000)
    (out := tmp_path / "out.txt").write_text("x\n")
    assert main(["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: the output cannot be written (NotADirectoryError" in err


def test_an_output_that_stops_taking_writes_stops_the_run(ray_local, tmp_path: Path, checkpoint: Path) -> None:
    videos = {name: make_video(3, seed=i) for i, name in enumerate("abcdef")}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "masks").write_text("a file where the masks folder goes\n")  # every mask write fails, for good
    status = main(["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint), "--num-actors", "1"])
    assert status == EXIT_STORAGE
    assert not (out / "failures").exists()  # the videos are not at fault: nothing is recorded against them
    (summary_path,) = (out / "_runs").glob("*.json")
    summary = json.loads(summary_path.read_text())
    assert summary["stopped"] == "output unwritable"
    assert summary["interrupted"] is False
    assert summary["videos_done"] == summary["videos_failed"] == 0

    (out / "masks").unlink()
    assert main(["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint)]) == 0
    assert assert_accounted(str(out), list(videos))[0] == set(videos)


def test_a_resume_relabels_an_empty_file_and_counts_earlier_failures(
    ray_local, tmp_path: Path, checkpoint: Path
) -> None:
    videos = {"a": make_video(3, seed=1), "b": make_video(3, seed=2), "c": make_video(3, seed=3)}
    corpus = write_dataset(tmp_path / "corpus", videos, every=1000)
    out = tmp_path / "out"
    args = ["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint)]
    Path(output_at(str(out)).masks("a")).parent.mkdir(parents=True)
    Path(output_at(str(out)).masks("a")).write_bytes(b"")  # left by another tool
    Path(output_at(str(out)).failure("b")).parent.mkdir(parents=True)
    Path(output_at(str(out)).failure("b")).write_text(
        json.dumps({"video_id": "b", "error_type": "X", "error": "earlier"})
    )

    assert main(args) == EXIT_SOME_FAILED  # b has a failure record and was not retried: not every video has masks
    assert read_video_masks(str(out), "a").ids.shape[0] == 3
    summaries = [json.loads(p.read_text()) for p in (out / "_runs").glob("*.json")]
    assert summaries[0]["videos_failed_before"] == {"count": 1, "first": ["b"]}

    assert main([*args, "--retry-failed"]) == 0
    assert assert_accounted(str(out), list(videos)) == ({"a", "b", "c"}, set())


def test_actors_bigger_than_every_node_are_refused(
    ray_local, tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, seed=1)}, every=1000)
    args = ["--input", str(corpus), "--output", str(tmp_path / "out"), "--checkpoint", str(checkpoint)]
    assert main([*args, "--cpus-per-actor", "64"]) == 2
    assert "--cpus-per-actor 64: no node of this Ray instance has that many CPUs (the most is 2)" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("manifest", ["missing.csv", "empty.csv"])
def test_a_manifest_that_is_not_there_or_empty_exits_2_naming_it(
    tmp_path: Path, checkpoint: Path, ray_must_not_start: None, capsys: pytest.CaptureFixture[str], manifest: str
) -> None:
    if manifest == "empty.csv":
        (tmp_path / manifest).write_bytes(b"")
    args = ["--input", str(tmp_path / manifest), "--output", str(tmp_path / "out"), "--checkpoint", str(checkpoint)]
    assert main(args) == 2
    assert f"error: {tmp_path / manifest}: " in capsys.readouterr().err


def test_refused_permission_names_the_file_or_the_credentials() -> None:
    local = PermissionError(errno.EACCES, "Permission denied", "/data/labels/_runs")
    assert describe_refusal(local) == "permission denied: /data/labels/_runs (Permission denied)"
    remote = PermissionError("Access Denied. (https://alice:s3cr3t@host/bucket)")
    assert "check the storage credentials" in describe_refusal(remote)
    assert "s3cr3t" not in describe_refusal(remote)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of the test's own (root may mount one; elsewhere the test is skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_a_full_or_read_only_disk_exits_2_before_anything_starts(
    tmp_path: Path,
    small_disk: Path,
    checkpoint: Path,
    ray_must_not_start: None,
    capsys: pytest.CaptureFixture[str],
    disk: str,
) -> None:
    corpus = write_dataset(tmp_path / "corpus", {"a": make_video(3, seed=1)}, every=1000)
    out = small_disk / "labels"
    out.mkdir()
    if disk == "full":
        with (small_disk / "filler").open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        expected = "OSError: [Errno 28] No space left on device"
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        expected = "OSError: [Errno 30] Read-only file system"
    assert main(["--input", str(corpus), "--output", str(out), "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: the output cannot be written ({expected}" in err
