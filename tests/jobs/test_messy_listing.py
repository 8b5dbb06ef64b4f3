"""Corpora as people have them, read by the driver: hand-made manifests (numeric-looking ids, bad rows, relative
paths, foreign URIs) and folders with things in them that are not videos."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from savos.data import InputError
from savos_job.corpus import RefusedRow, VideoTask, discover


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video_id", "frames", "masks"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_ids_are_text_exactly_as_written(tmp_path: Path) -> None:
    rows = [{"video_id": i, "frames": f"/f/{i}", "masks": f"/m/{i}"} for i in ("00042", "042", "0", "1e3", "nan")]
    tasks = list(discover(str(_csv(tmp_path / "m.csv", rows))))
    assert [t.video_id for t in tasks] == ["00042", "042", "0", "1e3", "nan"]


def test_a_late_non_numeric_id_after_a_long_numeric_block_is_read(tmp_path: Path) -> None:
    """pyarrow's CSV reader infers types from its first block and failed on a later row; every cell is text."""
    rows = [{"video_id": str(i), "frames": f"/f/{i}", "masks": f"/m/{i}"} for i in range(60_000)]
    rows.append({"video_id": "clip-a", "frames": "/f/a", "masks": "/m/a"})
    path = _csv(tmp_path / "m.csv", rows)
    assert path.stat().st_size > 1 << 20  # past pyarrow's first block
    tasks = list(discover(str(path)))
    assert len(tasks) == 60_001
    assert tasks[-1] == VideoTask("clip-a", "/f/a", "/m/a")


def test_parquet_and_jsonl_numbers_become_their_text(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"video_id": [0, 7], "frames": ["/f/0", "/f/7"], "masks": ["/m/0", "/m/7"]}),
        p := tmp_path / "m.parquet",
    )
    assert [t.video_id for t in discover(str(p))] == ["0", "7"]
    (j := tmp_path / "m.jsonl").write_text(json.dumps({"video_id": 0, "frames": "/f", "masks": "/m"}) + "\n")
    assert [t.video_id for t in discover(str(j))] == ["0"]


def test_bad_rows_are_reported_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    lines = [
        json.dumps({"video_id": "a", "frames": "/f/a", "masks": "/m/a"}),
        '{"video_id": "b", "frames": ',  # broken off
        json.dumps(["c", "/f/c", "/m/c"]),  # not an object
        json.dumps({"video_id": "d", "frames": "/f/d"}),  # no masks
        json.dumps({"video_id": "e", "frames": "/f/e", "masks": "/m/e"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    refused: list[RefusedRow] = []
    tasks = list(discover(str(path), on_refused=refused.append))
    assert [t.video_id for t in tasks] == ["a", "e"]
    assert [(r.row, r.video_id) for r in refused] == [(2, None), (3, None), (4, "d")]
    assert "not valid JSON" in refused[0].problem
    assert "not an object" in refused[1].problem
    assert "needs masks" in refused[2].problem
    assert str(refused[2]).startswith(f"{path}: row 4: ")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.csv", None, "manifest not found"),
        ("empty.csv", b"", "lists no videos"),
        ("header-only.csv", b"video_id,frames,masks\n", "lists no videos"),
        ("empty.jsonl", b"\n\n", "lists no videos"),
        ("zero-bytes.parquet", b"", "cannot read the manifest"),
        ("latin1.csv", "video_id,frames,masks\ncaf\xe9,/f,/m\n".encode("latin-1"), "cannot read the manifest"),
    ],
)
def test_a_manifest_that_cannot_be_read_names_itself(
    tmp_path: Path, name: str, content: bytes | None, problem: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as caught:
        list(discover(str(path)))
    assert caught.value.path == str(path)


def test_an_empty_parquet_manifest_names_itself(tmp_path: Path) -> None:
    schema = pa.schema([("video_id", pa.string()), ("frames", pa.string()), ("masks", pa.string())])
    pq.write_table(schema.empty_table(), path := tmp_path / "m.parquet")
    with pytest.raises(InputError, match="lists no videos"):
        list(discover(str(path)))


def test_relative_paths_are_read_from_the_manifests_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lists").mkdir()
    path = _csv(tmp_path / "lists" / "m.csv", [{"video_id": "a", "frames": "../clips/a", "masks": "masks/a.png"}])
    monkeypatch.chdir("/")
    (task,) = discover(str(path))
    assert task.source == f"file://{tmp_path}/clips/a"
    assert task.masks == f"file://{tmp_path}/lists/masks/a.png"


def test_uris_of_other_schemes_need_allowing(tmp_path: Path) -> None:
    rows = [
        {"video_id": "local", "frames": "/f/a", "masks": "file:///m/a"},
        {"video_id": "web", "frames": "http://127.0.0.1:9/a", "masks": "/m/b"},
        {"video_id": "secret", "frames": "https://user:hunter2@example.invalid/c", "masks": "/m/c"},
        {"video_id": "bucket", "frames": "s3://b/d", "masks": "s3://b/m/d"},
    ]
    path = _csv(tmp_path / "m.csv", rows)
    refused: list[RefusedRow] = []
    assert [t.video_id for t in discover(str(path), on_refused=refused.append)] == ["local"]
    assert [r.video_id for r in refused] == ["web", "secret", "bucket"]
    assert "scheme http:// is not allowed" in refused[0].problem
    assert "hunter2" not in refused[1].problem
    assert [t.video_id for t in discover(str(path), allow_schemes=["http", "s3"], on_refused=lambda r: None)] == [
        "local",
        "web",
        "bucket",
    ]


def test_entries_that_are_not_videos_are_reported(tmp_path: Path) -> None:
    frames = tmp_path / "JPEGImages" / "480p"
    for video in ("a", "b"):
        (frames / video).mkdir(parents=True)
    (frames / "notes.txt").write_text("x")
    os.symlink("loop", frames / "loop")
    (tmp_path / "JPEGImages" / "extra").mkdir()  # beside 480p/: not read
    skipped: list[tuple[str, str]] = []
    tasks = list(discover(str(tmp_path), on_skip=lambda entry, why: skipped.append((entry, why))))
    assert [t.video_id for t in tasks] == ["a", "b"]
    by_name = {Path(entry).name: why for entry, why in skipped}
    assert set(by_name) == {"extra", "loop", "notes.txt"}
    assert "beside JPEGImages/480p" in by_name["extra"]
    assert "broken link" in by_name["loop"]
    assert "not a folder of frames" in by_name["notes.txt"]


def test_stray_files_beside_video_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"")
    skipped: list[str] = []
    tasks = list(discover(str(tmp_path), on_skip=lambda entry, why: skipped.append(Path(entry).name)))
    assert [t.video_id for t in tasks] == ["a"]
    assert skipped == [".DS_Store"]
