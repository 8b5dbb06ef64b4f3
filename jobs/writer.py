"""Encode and write: a thread that turns each frame's label map into COCO RLE rows, stages the video's Parquet
locally, uploads it whole when the video ends (or its failure record when it failed) and hands the video's
result to its reply. It runs beside the network, so encoding and storage I/O overlap the network's work."""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from savos.calibration import JCalibration
from savos.data.frames import FrameSource
from savos.io.preview import contact_sheet
from savos.io.schema import MaskRow, display_id, encode_labels, schema_of_run, to_table

from .corpus import VideoTask
from .output import OutputLocation, OutputUnwritable, failure_record
from .redact import log_text, redact
from .remote import open_video

logger = logging.getLogger(__name__)

ROW_GROUP_FRAMES = 256  # frames per Parquet row group: the rows held for a video at once
QUEUE_FRAMES = 32  # frames waiting for the encoder at most: the network waits beyond (memory stays bounded)


@dataclass(frozen=True)
class VideoResult:
    """What became of one video (a row of the job's summary)."""

    video_id: str
    # "done", "failed" (a record in failures/), "unrecorded" (storage down: neither was written), or "unwritable"
    # (the output refuses writes for good: the run stops)
    status: str
    frames: int
    objects: int
    seconds: float
    started: float  # wall clock (epoch seconds) when the video was opened, and when its output was written
    finished: float
    error: str = ""

    def to_row(self) -> dict[str, Any]:
        """As a dict: what the actor returns to the driver."""
        return self.__dict__.copy()


Reply = Callable[[VideoResult], None]  # takes a video's result (called from the writer thread)


class EvenSample:
    """Evenly spaced items of a stream of unknown length, in constant memory: every ``step``-th item is kept,
    and when more than ``2 * size`` are, every other one of those goes and the step doubles."""

    def __init__(self, size: int = 8) -> None:
        self.size, self.step = size, 1
        self.items: dict[int, np.ndarray] = {}

    def offer(self, index: int, item: np.ndarray) -> None:
        """The stream's item number ``index``; kept if it falls on the current step."""
        if index % self.step:
            return
        self.items[index] = item
        if len(self.items) > 2 * self.size:
            self.step *= 2
            self.items = {i: v for i, v in self.items.items() if i % self.step == 0}


@dataclass(eq=False)
class VideoInProgress:
    """One video from its opening to its result: its task, where its result goes, and what the writer has
    accumulated of it."""

    task: VideoTask
    reply: Reply
    staging: tempfile.TemporaryDirectory[str]  # its downloads and its Parquet until the upload
    start: float = field(default_factory=time.perf_counter)  # for the video's seconds
    started: float = field(default_factory=time.time)  # wall clock, comparable across the job's processes
    frames: FrameSource | None = None
    objects: int = 0
    sheet: EvenSample | None = None
    parquet: pq.ParquetWriter | None = None
    rows: list[MaskRow] = field(default_factory=list)
    count: int = 0
    error: Exception | None = None  # the first encoding error; the video's later frames are dropped
    corrections: str | None = None  # the digest of the corrections it was labelled with (savos_job.carry)

    @property
    def staged_parquet(self) -> Path:
        """Where the video's Parquet is written before its upload."""
        return Path(self.staging.name) / "masks.parquet"

    def close(self) -> None:
        """Drop what is staged (after the upload, or for a video that will not finish)."""
        if self.parquet is not None:
            self.parquet.close()
        self.staging.cleanup()


@dataclass(frozen=True)
class _Frame:
    video: VideoInProgress
    frame_idx: int
    obj_ids: list[int]
    labels: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class _End:
    video: VideoInProgress
    error: Exception | None


@dataclass(frozen=True)
class _Abandon:
    video: VideoInProgress


class MaskWriter:
    """The writer thread of a labeler: frames and ends are handed in (:meth:`frame`, :meth:`end`,
    :meth:`abandon`) in the order the network produces them, and handled in that order."""

    def __init__(
        self,
        output: OutputLocation,
        model_id: str,
        preview_every: int = 0,
        run_id: str | None = None,
        calibration: JCalibration | None = None,
    ) -> None:
        self.output, self.model_id, self.preview_every = output, model_id, preview_every
        self.calibration = calibration  # the model's score -> J map: each row's j_estimate
        self.run_id = run_id  # each video's file records the run that wrote it
        self._work: queue.Queue[_Frame | _End | _Abandon | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name="savos-writer", daemon=True)
        self._thread.start()

    def schema(self, video: VideoInProgress) -> pa.Schema:
        """The table's schema, with the run and the video's corrections digest in its metadata."""
        return schema_of_run(self.run_id, video.corrections)

    def frame(
        self, video: VideoInProgress, frame_idx: int, obj_ids: list[int], labels: np.ndarray, scores: np.ndarray
    ) -> None:
        """A frame's label map and per-object scores, to append to the video's rows."""
        self._work.put(_Frame(video, frame_idx, obj_ids, labels, scores))

    def end(self, video: VideoInProgress, error: Exception | None = None) -> None:
        """The video is over (with ``error``, it failed): its output goes up and its result to its reply."""
        self._work.put(_End(video, error))

    def abandon(self, video: VideoInProgress) -> None:
        """The video will not finish (the run is stopping): no result, its staging goes."""
        self._work.put(_Abandon(video))

    def close(self) -> None:
        """No more work: returns once the queue is done and every result delivered."""
        self._work.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            video = item.video
            if isinstance(item, _End):
                video.reply(self._finish(video, video.error or item.error))
            elif isinstance(item, _Abandon):
                video.close()
            elif video.error is None:
                try:
                    self._encode(video, item)
                except Exception as err:  # this video fails at its end; the others go on
                    video.error = err

    def _encode(self, video: VideoInProgress, frame: _Frame) -> None:
        """Append one frame's rows to the video's staged Parquet, a row group every :data:`ROW_GROUP_FRAMES`
        frames, so memory stays flat however long the video."""
        assert video.frames is not None
        if video.parquet is None:
            video.parquet = pq.ParquetWriter(video.staged_parquet, self.schema(video), compression="zstd")
            video.sheet = EvenSample() if wants_preview(video.task.video_id, self.preview_every) else None
        if video.sheet is not None:
            video.sheet.offer(frame.frame_idx, frame.labels)
        video_id, name = display_id(video.task.video_id), display_id(video.frames.frame_name(frame.frame_idx))
        estimates = self.calibration.estimate(frame.scores).tolist() if self.calibration is not None else None
        video.rows += encode_labels(
            video_id,
            frame.frame_idx,
            name,
            frame.labels,
            frame.obj_ids,
            frame.scores.tolist(),
            self.model_id,
            estimates,
        )
        video.count += 1
        video.objects = max(video.objects, len(frame.obj_ids))
        if video.count % ROW_GROUP_FRAMES == 0:
            video.parquet.write_table(to_table(video.rows))
            video.rows = []

    def _finish(self, video: VideoInProgress, error: Exception | None) -> VideoResult:
        """The video's Parquet goes up whole (or its failure record does); its staging folder goes."""
        try:
            if error is not None:
                raise error
            if video.parquet is None:  # no frames: the (empty) table is still written
                video.parquet = pq.ParquetWriter(video.staged_parquet, self.schema(video), compression="zstd")
            if video.rows or video.count == 0:
                video.parquet.write_table(to_table(video.rows))
            video.parquet.close()
            self.output.put_file(str(video.staged_parquet), self.output.masks(video.task.video_id))
            self.output.remove(self.output.failure(video.task.video_id))  # an earlier run's record, if any
            if video.sheet is not None:
                self._write_preview(video.task, video.sheet.items)
            seconds = time.perf_counter() - video.start
            video_id = display_id(video.task.video_id)
            return VideoResult(video_id, "done", video.count, video.objects, seconds, video.started, time.time())
        except OutputUnwritable as err:  # not the video's fault: no record, and the driver stops the run
            return _result(video, "unwritable", err.problem)
        except Exception as err:  # any failure of this video is its own, recorded, and the job goes on
            return self._failed(video, err)
        finally:
            video.close()

    def _failed(self, video: VideoInProgress, err: BaseException) -> VideoResult:
        task = video.task
        video_id = display_id(task.video_id)
        logger.warning("video %s failed: %s: %s", log_text(video_id), type(err).__name__, log_text(str(err)))
        trace = "".join(traceback.format_exception(err))
        data = failure_record(task.video_id, task.to_row(), type(err).__name__, str(err), trace, self.model_id)
        error = redact(display_id(f"{type(err).__name__}: {err}"))
        try:
            self.output.put(self.output.failure(task.video_id), data)
        except OutputUnwritable as write_err:
            return _result(video, "unwritable", write_err.problem)
        except Exception as write_err:  # storage is down past the retry budget: the driver reports it
            logger.error("video %s: cannot record its failure either (%s)", log_text(video_id), write_err)
            return _result(video, "unrecorded", error)
        return _result(video, "failed", error)

    def _write_preview(self, task: VideoTask, sheet: dict[int, np.ndarray]) -> None:
        """Read the sampled frames again and write the contact sheet; a preview never fails its video."""
        try:
            with tempfile.TemporaryDirectory(prefix="savos-preview-") as staging:
                frames = open_video(task, Path(staging), self.output.storage.retry)
                picked = [frame for t, frame in enumerate(frames) if t in sheet]
                names = [frames.frame_name(t) for t in sorted(sheet)]
                image = contact_sheet(picked, [sheet[t] for t in sorted(sheet)], names, columns=4, tile_width=320)
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if ok:
                self.output.put(self.output.preview(task.video_id), png.tobytes())
        except Exception as err:
            logger.warning(
                "video %s: no preview (%s: %s)", log_text(task.video_id), type(err).__name__, log_text(str(err))
            )


def wants_preview(video_id: str, every: int) -> bool:
    """About one video in ``every`` gets a preview, chosen by id so that reruns pick the same ones."""
    return every > 0 and zlib.crc32(video_id.encode()) % every == 0


def _result(video: VideoInProgress, status: str, error: str = "") -> VideoResult:
    """A video's result without masks."""
    seconds, video_id = time.perf_counter() - video.start, display_id(video.task.video_id)
    return VideoResult(video_id, status, 0, 0, seconds, video.started, time.time(), error)
