"""Read one video's masks back from the job's Parquet output, on any fsspec URI."""

from __future__ import annotations

from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow.parquet as pq

from savos.data.errors import InputError

from .compaction import read_compacted
from .schema import SCHEMA, decode_row, masks_key, video_key


@dataclass(frozen=True)
class VideoMasks:
    """A labelled video: ``ids (T, H, W)`` object ids per frame (0 background), with names, objects and scores."""

    video_id: str
    frame_names: list[str]
    obj_ids: list[int]
    ids: np.ndarray
    scores: dict[int, np.ndarray]  # obj_id -> (T,) mean probability over the object's mask (0 where absent)
    model: str
    estimates: dict[int, np.ndarray] | None = None  # obj_id -> (T,) expected J (None: the model has no calibration)

    def priority_scores(self, obj_id: int) -> np.ndarray:
        """``(T,)`` what a tool should show as the object's score per frame: its expected J where the model has a
        calibration, else its mean probability."""
        return (self.estimates or self.scores)[obj_id]

    def object_masks(self, obj_id: int) -> np.ndarray:
        """``(T, H, W)`` bool masks of one object."""
        if obj_id not in self.obj_ids:
            raise KeyError(f"video {self.video_id} has no object {obj_id}; it has {self.obj_ids}")
        return self.ids == obj_id


def read_video_masks(output: str, video_id: str) -> VideoMasks:
    """The masks of ``video_id`` under the job output ``output`` (a folder or ``s3://``/``gs://`` prefix)."""
    fs, root = fsspec.core.url_to_fs(output)
    path = f"{root.rstrip('/')}/{masks_key(video_id)}"
    uri = fs.unstrip_protocol(path)
    compacted = read_compacted(output, video_key(video_id))  # one row group of a large file, after compaction
    if compacted is not None:
        table = compacted
    elif fs.exists(path):
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, schema=SCHEMA)  # files from before a column was added read it as null
    else:
        raise InputError(uri, f"no masks for video {video_id!r} (not labelled yet, or it failed: see failures/)")
    table = table.sort_by([("frame_idx", "ascending"), ("obj_id", "ascending")])
    rows = table.to_pylist()
    if not rows:
        raise InputError(uri, "the file has no rows")
    frames = sorted({(r["frame_idx"], r["frame_name"]) for r in rows})
    if [t for t, _ in frames] != list(range(len(frames))):
        raise InputError(uri, f"frames are not 0..{len(frames) - 1}")
    obj_ids = sorted({r["obj_id"] for r in rows})
    height, width = rows[0]["height"], rows[0]["width"]
    ids = np.zeros((len(frames), height, width), np.uint8 if max(obj_ids) < 256 else np.int32)
    scores = {obj_id: np.zeros(len(frames), np.float32) for obj_id in obj_ids}
    estimated = all(row.get("j_estimate") is not None for row in rows)
    estimates = {obj_id: np.zeros(len(frames), np.float32) for obj_id in obj_ids} if estimated else None
    for row in rows:
        ids[row["frame_idx"]][decode_row(row["rle_counts"], height, width)] = row["obj_id"]
        scores[row["obj_id"]][row["frame_idx"]] = row["score"]
        if estimates is not None:
            estimates[row["obj_id"]][row["frame_idx"]] = row["j_estimate"]
    names = [name for _, name in frames]
    return VideoMasks(video_id, names, obj_ids, ids, scores, str(rows[0]["model"]), estimates)
