"""The README's recipes for reading a whole output folder with pandas, pyarrow and DuckDB work as written,
including video ids that look like numbers (a hive partition would turn ``00042`` into 42)."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from savos.io import encode_frame, masks_key, to_table

IDS = ["00042", "bear"]


@pytest.fixture
def masks_folder(tmp_path: Path) -> Path:
    for video_id in IDS:
        labels = np.zeros((3, 8, 8), np.uint8)
        labels[:, 2:5, 2:5] = 1
        rows = [
            r
            for t in range(3)
            for r in encode_frame(video_id, t, f"{t:05d}", labels[t], [1], labels[None, t] * 1.0, "m")
        ]
        buffer = io.BytesIO()
        pq.write_table(to_table(rows), buffer)
        path = tmp_path / masks_key(video_id)
        path.parent.mkdir(parents=True)
        path.write_bytes(buffer.getvalue())
    return tmp_path / "masks"


def _check(frame: pd.DataFrame) -> None:
    assert sorted(frame["video_id"].astype(str).unique()) == IDS
    assert len(frame) == 2 * 3
    assert set(frame["area"]) == {9}


def test_pandas(masks_folder: Path) -> None:
    _check(pd.read_parquet(masks_folder, partitioning=None))


def test_pyarrow_dataset(masks_folder: Path) -> None:
    _check(pads.dataset(masks_folder, format="parquet").to_table().to_pandas())


def test_duckdb(masks_folder: Path) -> None:
    _check(duckdb.sql(f"SELECT * FROM read_parquet('{masks_folder}/*/*.parquet')").df())


def test_duckdb_expected_j_per_object_also_over_files_from_before_the_column(masks_folder: Path) -> None:
    old = masks_folder.parent / masks_key("00042")
    pq.write_table(pq.read_table(old).drop_columns(["j_estimate"]), old)  # written before the column existed
    new = masks_folder.parent / masks_key("bear")
    table = pq.read_table(new)
    pq.write_table(table.set_column(table.schema.get_field_index("j_estimate"), "j_estimate", pa.array(
        [0.25, 0.5, 0.75], pa.float32())), new)  # fmt: skip
    query = (
        f"SELECT video_id, obj_id, avg(j_estimate) j FROM read_parquet('{masks_folder}/*/*.parquet', "
        "union_by_name=true) GROUP BY 1, 2 ORDER BY 1"
    )
    assert duckdb.sql(query).fetchall() == [("00042", 1, None), ("bear", 1, 0.5)]
