"""Corpus discovery on a local folder: the three layouts and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from savos.data import InputError
from savos.data.synthetic import make_video
from savos_job.corpus import VideoTask, discover
from tests.conftest import write_dataset


def test_davis_layout(tmp_path: Path) -> None:
    write_dataset(tmp_path, {"b": make_video(3, seed=1), "a": make_video(3, seed=2)})
    tasks = list(discover(str(tmp_path)))
    assert [t.video_id for t in tasks] == ["a", "b"]
    assert tasks[0].source.endswith("JPEGImages/480p/a")
    assert tasks[0].masks.endswith("Annotations/480p/a")
    assert VideoTask.from_row(tasks[0].to_row()) == tasks[0]


def test_video_files_with_mask_folder_or_single_mask(tmp_path: Path) -> None:
    for name in ("one.mp4", "two.mov", "two.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "one").mkdir()
    tasks = {t.video_id: t for t in discover(f"file://{tmp_path}")}
    assert set(tasks) == {"one", "two"}
    assert tasks["one"].masks == f"file://{tmp_path}/one"
    assert tasks["two"].masks == f"file://{tmp_path}/two"  # the worker falls back to two.png
    assert tasks["two"].source == f"file://{tmp_path}/two.mov"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_manifest(tmp_path: Path, suffix: str) -> None:
    rows = [
        {"video_id": "v1", "frames": "s3://b/v1/", "video": "", "masks": "s3://b/m/v1/"},
        {"video_id": "v2", "frames": "", "video": "s3://b/v2.mp4", "masks": "s3://b/m/v2.png"},
    ]
    path = tmp_path / f"manifest{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif suffix == ".csv":
        path.write_text("video_id,frames,video,masks\n" + "".join(",".join(r.values()) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    tasks = list(discover(str(path), allow_schemes=["s3"]))
    assert tasks == [VideoTask("v1", "s3://b/v1/", "s3://b/m/v1/"), VideoTask("v2", "s3://b/v2.mp4", "s3://b/m/v2.png")]


def test_errors_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="corpus folder not found"):
        discover(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no videos"):
        list(discover(str(tmp_path)))
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps({"video_id": "v"}) + "\n")
    with pytest.raises(InputError, match=r"m\.jsonl: row 1: needs frames or video, masks"):
        list(discover(str(bad)))
    with pytest.raises(ValueError, match="unknown layout"):
        discover(str(tmp_path), layout="zip")
