"""Output rows: COCO RLE that pycocotools decodes back to the mask, boxes, scores, the Arrow schema."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from savos.io.schema import SCHEMA, decode_row, encode_frame, to_table


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
