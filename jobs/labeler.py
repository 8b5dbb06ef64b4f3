"""Label one video end to end: read it where it is stored, propagate, encode, write one Parquet object.

Output layout under the job's OUT:

- ``masks/video_id=<id>/part-0.parquet``: the video's rows (:mod:`jobs.schema`), written once, atomically.
- ``failures/<id>.json``: why a video could not be labelled (error, traceback, the task), instead of its masks.

A video's failure is recorded and returned, never raised: one bad video must not stop a corpus.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from savos.data.annotations import object_masks
from savos.inference import Predictor, probs_to_ids
from savos.io.schema import MaskRow, encode_frame, masks_key, to_table

from .corpus import VideoTask
from .remote import load_annotations, open_video
from .storage import join, put_atomic, resolve, with_retries

logger = logging.getLogger(__name__)


def mask_path(output: str, video_id: str) -> str:
    """Where a video's Parquet goes, as a path of the output filesystem."""
    fs, root = resolve(output)
    return join(fs, root, masks_key(video_id))


def failure_path(output: str, video_id: str) -> str:
    fs, root = resolve(output)
    return join(fs, root, "failures", f"{video_id}.json")


@dataclass(frozen=True)
class VideoResult:
    """What became of one video (a row of the job's summary)."""

    video_id: str
    status: str  # "done" or "failed"
    frames: int
    objects: int
    seconds: float
    error: str = ""

    def to_row(self) -> dict[str, Any]:
        return self.__dict__.copy()


class VideoLabeler:
    """Holds a predictor; labels videos one at a time into ``output``."""

    def __init__(self, predictor: Predictor, model_id: str, output: str) -> None:
        self.predictor, self.model_id, self.output = predictor, model_id, output
        self.fs, _ = resolve(output)

    def label(self, task: VideoTask) -> VideoResult:
        start = time.perf_counter()
        try:
            rows, frames, objects = self._propagate(task)
            buffer = io.BytesIO()
            pq.write_table(to_table(rows), buffer, compression="zstd")
            put_atomic(self.fs, mask_path(self.output, task.video_id), buffer.getvalue())
            self._clear_failure(task.video_id)
            return VideoResult(task.video_id, "done", frames, objects, time.perf_counter() - start)
        except Exception as err:  # any failure of this video is its own, recorded, and the job goes on
            logger.warning("video %s failed: %s: %s", task.video_id, type(err).__name__, err)
            record = {
                "video_id": task.video_id,
                "task": task.to_row(),
                "error_type": type(err).__name__,
                "error": str(err),
                "traceback": traceback.format_exc(),
                "model": self.model_id,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            put_atomic(self.fs, failure_path(self.output, task.video_id), json.dumps(record, indent=2).encode())
            return VideoResult(
                task.video_id, "failed", 0, 0, time.perf_counter() - start, f"{type(err).__name__}: {err}"
            )

    def _propagate(self, task: VideoTask) -> tuple[list[MaskRow], int, int]:
        with tempfile.TemporaryDirectory(prefix="savos-video-") as staging:
            frames = open_video(task, Path(staging))
            annotations = load_annotations(task, frames, Path(staging))
            state = self.predictor.init_state(frames)
            for frame_idx, ids in annotations.items():
                for obj_id, mask in object_masks(ids).items():
                    self.predictor.add_mask(state, frame_idx, obj_id, mask)
            rows: list[MaskRow] = []
            count = 0
            for frame_idx, obj_ids, probs in self.predictor.propagate(state):
                labels = probs_to_ids(obj_ids, probs)
                name = frames.frame_name(frame_idx)
                rows += encode_frame(
                    task.video_id, frame_idx, name, labels, obj_ids, probs.float().cpu().numpy(), self.model_id
                )
                count += 1
            return rows, count, len(state.obj_ids)

    def _clear_failure(self, video_id: str) -> None:
        path = failure_path(self.output, video_id)
        if with_retries(lambda: self.fs.exists(path), f"check {path}"):
            with_retries(lambda: self.fs.rm(path), f"remove {path}")
