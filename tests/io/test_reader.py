"""Reading one video's masks back from the job's output, locally and from S3."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import s3fs

from savos.data.errors import InputError
from savos.data.synthetic import make_video
from savos.io import encode_frame, masks_key, read_video_masks, to_table
from tests.s3server import SeaweedS3


def _parquet(video_id: str, masks: np.ndarray) -> bytes:
    """What the job writes for a video whose label maps are ``masks (T, H, W)``, rows in shuffled order."""
    obj_ids = [int(i) for i in np.unique(masks) if i]
    rows = []
    for t, labels in enumerate(masks):
        probs = np.stack([(labels == i) * 0.5 + 0.25 for i in obj_ids]).astype(np.float32)
        rows += encode_frame(video_id, t, f"{t:05d}", labels, obj_ids, probs, "m1")
    order = np.random.default_rng(0).permutation(len(rows))
    buffer = io.BytesIO()
    pq.write_table(to_table([rows[i] for i in order]), buffer)
    return buffer.getvalue()


def test_reads_ids_names_objects_and_scores(tmp_path: Path) -> None:
    video = make_video(5, num_objects=3, seed=7)
    path = tmp_path / "out" / masks_key("v1")
    path.parent.mkdir(parents=True)
    path.write_bytes(_parquet("v1", video.masks))
    got = read_video_masks(str(tmp_path / "out"), "v1")
    np.testing.assert_array_equal(got.ids, video.masks)
    assert got.frame_names == [f"{t:05d}" for t in range(5)]
    assert got.obj_ids == [1, 2, 3]
    assert got.model == "m1"
    np.testing.assert_array_equal(got.object_masks(2), video.masks == 2)
    present = (video.masks == 2).any(axis=(1, 2))
    np.testing.assert_allclose(got.scores[2], np.where(present, 0.75, 0.0))
    with pytest.raises(KeyError, match="no object 9"):
        got.object_masks(9)


def test_a_missing_video_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"masks/video_id=nope/part-0\.parquet.*not labelled yet"):
        read_video_masks(str(tmp_path), "nope")


@pytest.mark.s3
def test_reads_from_s3(s3_server: SeaweedS3) -> None:
    video = make_video(3, num_objects=2, seed=8)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("reader")
    fs.pipe_file(f"reader/out/{masks_key('clip')}", _parquet("clip", video.masks))
    np.testing.assert_array_equal(read_video_masks("s3://reader/out", "clip").ids, video.masks)
