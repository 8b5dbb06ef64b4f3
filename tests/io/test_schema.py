"""Output rows: COCO RLE that pycocotools decodes back to the mask, boxes, scores, the Arrow schema."""

from __future__ import annotations

import io
import urllib.parse
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from savos.io.schema import (
    MAX_KEY_BYTES,
    SCHEMA,
    conform,
    decode_row,
    encode_frame,
    failure_key,
    masks_key,
    to_table,
    video_key,
)


def test_rows_round_trip_through_parquet() -> None:
    labels = np.zeros((20, 30), np.uint8)
    labels[2:7, 3:12] = 4  # object 4: 5 rows x 9 columns
    labels[10:20, 25:30] = 9
    probs = np.zeros((3, 20, 30), np.float32)
    probs[0][labels == 4] = 0.8
    probs[1][labels == 9] = 0.6
    rows = encode_frame("v", 3, "00003", labels, [4, 9, 11], probs, "ckpt")
    buffer = io.BytesIO()
    pq.write_table(to_table(rows), buffer)
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert table.schema.equals(SCHEMA)
    got = table.to_pylist()
    assert [r["obj_id"] for r in got] == [4, 9, 11]
    for row, obj_id in zip(got, [4, 9, 11], strict=True):
        np.testing.assert_array_equal(decode_row(row["rle_counts"], row["height"], row["width"]), labels == obj_id)
    assert got[0]["area"] == 45
    assert got[0]["bbox"] == [3.0, 2.0, 9.0, 5.0]
    assert got[0]["score"] == pytest.approx(0.8)
    assert got[2]["area"] == 0
    assert got[2]["bbox"] == [0.0, 0.0, 0.0, 0.0]
    assert got[2]["score"] == 0.0


def test_empty_table_has_the_schema() -> None:
    assert to_table([]).schema.equals(SCHEMA)


LONG_IDS = ["中" * 28, "中" * 29, "a" * 250, "a" * 129, "%" * 60, "." + "b" * 200, "é" * 64 + "x"]


def test_long_ids_get_bounded_distinct_keys() -> None:
    """Percent-encoding makes a CJK character 9 bytes: past ~28 of them a key overflowed the 255-byte file-name
    limit, counting the temporary name a local write uses (``.<name>.<32 hex>.tmp``)."""
    keys = [video_key(video_id) for video_id in LONG_IDS]
    assert len(set(keys)) == len(keys)
    for key in keys:
        for name in (f"{key}.json", f"{key}.png", f"video_id={key}"):
            temporary = f".{name}.{'0' * 32}.tmp"
            assert len(temporary.encode()) <= 210, temporary
        assert "/" not in key
        assert not key.startswith(".")
    # a cut key never ends inside an escape, and differs from every uncut key by its length
    cut = video_key("中" * 29)
    assert len(cut) > MAX_KEY_BYTES
    assert urllib.parse.unquote(cut.split("~")[0]) == "中" * 14


def test_short_ids_keep_their_readable_keys() -> None:
    assert masks_key("bear") == "masks/video_id=bear/part-0.parquet"
    assert failure_key("a/b") == "failures/a%2Fb.json"
    assert video_key("a" * MAX_KEY_BYTES) == "a" * MAX_KEY_BYTES


def test_a_long_id_is_whole_in_its_rows_when_read_as_a_hive_dataset(tmp_path: Path) -> None:
    """Its folder has no ``video_id=``, so pyarrow's hive reading takes the id from the file."""
    labels = np.ones((4, 4), np.uint8)
    for video_id in ("short", LONG_IDS[0]):
        path = tmp_path / masks_key(video_id)
        path.parent.mkdir(parents=True)
        pq.write_table(to_table(encode_frame(video_id, 0, "0", labels, [1], labels[None] * 1.0, "m")), path)
    table = pads.dataset(tmp_path / "masks", partitioning="hive").to_table()
    assert sorted(table.column("video_id").to_pylist()) == sorted(["short", LONG_IDS[0]])


def test_a_table_from_before_a_column_existed_conforms_with_nulls() -> None:
    labels = np.zeros((4, 4), np.uint8)
    labels[1:3, 1:3] = 1
    old = to_table(encode_frame("v", 0, "00000", labels, [1], labels[None] * 0.9, "m")).drop_columns(["j_estimate"])
    table = conform(old)
    assert table.schema.equals(SCHEMA)
    assert table.column("j_estimate").to_pylist() == [None]
    assert table.column("area").to_pylist() == [4]
