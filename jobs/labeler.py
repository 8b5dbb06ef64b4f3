"""Label one video end to end: read it where it is stored, propagate, encode, write one Parquet object.

Output layout under the job's OUT (keys from :mod:`savos.io.schema`, ``<id>`` the video's safe key):

- ``masks/video_id=<id>/part-0.parquet``: the video's rows, written once, atomically.
- ``failures/<id>.json``: why a video could not be labelled (error, traceback, the task), instead of its masks.
- ``previews/<id>.png``: a contact sheet (8 to 16 frames with their masks) for a sample of the videos.

A video's failure is recorded and returned, never raised: one bad video must not stop a corpus.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq

from savos.data.annotations import object_masks
from savos.data.errors import InputError
from savos.inference import Predictor, probs_to_ids
from savos.io.preview import contact_sheet
from savos.io.schema import (
    SCHEMA,
    MaskRow,
    display_id,
    encode_frame,
    failure_key,
    masks_key,
    preview_key,
    to_table,
)

from .corpus import VideoTask
from .remote import load_annotations, open_video
from .storage import exists, join, put_atomic, put_atomic_file, resolve, with_retries

logger = logging.getLogger(__name__)


def mask_path(output: str, video_id: str) -> str:
    """Where a video's Parquet goes, as a path of the output filesystem."""
    fs, root = resolve(output)
    return join(fs, root, masks_key(video_id))


def failure_path(output: str, video_id: str) -> str:
    fs, root = resolve(output)
    return join(fs, root, failure_key(video_id))


def preview_path(output: str, video_id: str) -> str:
    fs, root = resolve(output)
    return join(fs, root, preview_key(video_id))


class EvenSample:
    """Evenly spaced items of a stream of unknown length, in constant memory: every ``step``-th item is kept,
    and when more than ``2 * size`` are, every other one of those goes and the step doubles."""

    def __init__(self, size: int = 8) -> None:
        self.size, self.step = size, 1
        self.items: dict[int, np.ndarray] = {}

    def offer(self, index: int, item: np.ndarray) -> None:
        if index % self.step:
            return
        self.items[index] = item
        if len(self.items) > 2 * self.size:
            self.step *= 2
            self.items = {i: v for i, v in self.items.items() if i % self.step == 0}


ROW_GROUP_FRAMES = 256  # frames per Parquet row group: the rows a labeler holds at once


@dataclass(frozen=True)
class VideoResult:
    """What became of one video (a row of the job's summary)."""

    video_id: str
    status: str  # "done", "failed" (a record in failures/), or "unrecorded" (storage down: neither was written)
    frames: int
    objects: int
    seconds: float
    error: str = ""

    def to_row(self) -> dict[str, Any]:
        return self.__dict__.copy()


class VideoLabeler:
    """Holds a predictor; labels videos one at a time into ``output``."""

    def __init__(
        self,
        predictor: Predictor,
        model_id: str,
        output: str,
        preview_every: int = 0,
        max_objects: int | None = None,
    ) -> None:
        self.predictor, self.model_id, self.output = predictor, model_id, output
        self.preview_every, self.max_objects = preview_every, max_objects
        self.fs, _ = resolve(output)

    def wants_preview(self, video_id: str) -> bool:
        """About one video in ``preview_every``, chosen by id so that reruns pick the same ones."""
        return self.preview_every > 0 and zlib.crc32(video_id.encode()) % self.preview_every == 0

    def label(self, task: VideoTask) -> VideoResult:
        start = time.perf_counter()
        try:
            sheet = EvenSample() if self.wants_preview(task.video_id) else None
            with tempfile.TemporaryDirectory(prefix="savos-video-") as staging:
                parquet, frames, objects = self._propagate(task, Path(staging), sheet)
                put_atomic_file(self.fs, str(parquet), mask_path(self.output, task.video_id))
            self._clear_failure(task.video_id)
            if sheet is not None:
                self._write_preview(task, sheet.items)
            return VideoResult(display_id(task.video_id), "done", frames, objects, time.perf_counter() - start)
        except Exception as err:  # any failure of this video is its own, recorded, and the job goes on
            video_id = display_id(task.video_id)
            logger.warning("video %s failed: %s: %s", video_id, type(err).__name__, err)
            record = {
                "video_id": video_id,
                "task": {k: display_id(v) for k, v in task.to_row().items()},
                "error_type": type(err).__name__,
                "error": display_id(str(err)),
                "traceback": display_id(traceback.format_exc()),
                "model": self.model_id,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            error = display_id(f"{type(err).__name__}: {err}")
            try:
                put_atomic(self.fs, failure_path(self.output, task.video_id), json.dumps(record, indent=2).encode())
            except Exception as write_err:  # storage is down past the retry budget: the driver reports it
                logger.error("video %s: cannot record its failure either (%s)", video_id, write_err)
                return VideoResult(video_id, "unrecorded", 0, 0, time.perf_counter() - start, error)
            return VideoResult(video_id, "failed", 0, 0, time.perf_counter() - start, error)

    def _propagate(self, task: VideoTask, staging: Path, sheet: EvenSample | None) -> tuple[Path, int, int]:
        """Label the video into ``staging/masks.parquet``, a row group every :data:`ROW_GROUP_FRAMES` frames, so
        memory stays flat however long the video. Label maps of evenly spaced frames go into ``sheet``."""
        frames = open_video(task, staging)
        annotations = load_annotations(task, frames, staging)
        objects = sorted({int(i) for ids in annotations.values() for i in np.unique(ids) if i})
        if self.max_objects is not None and len(objects) > self.max_objects:
            raise InputError(task.masks, f"{len(objects)} objects, more than the limit of {self.max_objects}")
        state = self.predictor.init_state(frames)
        for frame_idx, ids in annotations.items():
            for obj_id, mask in object_masks(ids).items():
                self.predictor.add_mask(state, frame_idx, obj_id, mask)
        path = staging / "masks.parquet"
        video_id = display_id(task.video_id)
        rows: list[MaskRow] = []
        count = 0
        with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
            for frame_idx, obj_ids, probs in self.predictor.propagate(state):
                labels = probs_to_ids(obj_ids, probs)
                if sheet is not None:
                    sheet.offer(frame_idx, labels)
                name = display_id(frames.frame_name(frame_idx))
                rows += encode_frame(
                    video_id, frame_idx, name, labels, obj_ids, probs.float().cpu().numpy(), self.model_id
                )
                count += 1
                if count % ROW_GROUP_FRAMES == 0:
                    writer.write_table(to_table(rows))
                    rows = []
            if rows or count == 0:
                writer.write_table(to_table(rows))
        return path, count, len(state.obj_ids)

    def _write_preview(self, task: VideoTask, sheet: dict[int, np.ndarray]) -> None:
        """Read the sampled frames again and write the contact sheet; a preview never fails its video."""
        try:
            with tempfile.TemporaryDirectory(prefix="savos-preview-") as staging:
                frames = open_video(task, Path(staging))
                picked = [frame for t, frame in enumerate(frames) if t in sheet]
                names = [frames.frame_name(t) for t in sorted(sheet)]
                image = contact_sheet(picked, [sheet[t] for t in sorted(sheet)], names, columns=4, tile_width=320)
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if ok:
                put_atomic(self.fs, preview_path(self.output, task.video_id), png.tobytes())
        except Exception as err:
            logger.warning("video %s: no preview (%s: %s)", task.video_id, type(err).__name__, err)

    def _clear_failure(self, video_id: str) -> None:
        path = failure_path(self.output, video_id)
        if exists(self.fs, path):
            with_retries(lambda: self.fs.rm(path), f"remove {path}")
