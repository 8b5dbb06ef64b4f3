"""Label videos end to end: read each where it is stored, propagate, encode, write one Parquet object per video.

Several videos go through the network in lock-step (:meth:`~savos.inference.Predictor.propagate_many`), and a
background thread turns their label maps into COCO RLE rows, writes the Parquet and uploads it, so that
encoding and storage I/O overlap the network's work instead of following it.

Output layout under the job's OUT (keys from :mod:`savos.io.schema`, ``<id>`` the video's safe key):

- ``masks/video_id=<id>/part-0.parquet``: the video's rows, written once, atomically.
- ``failures/<id>.json``: why a video could not be labelled (error, traceback, the task), instead of its masks.
- ``previews/<id>.png``: a contact sheet (8 to 16 frames with their masks) for a sample of the videos.

A video's failure is recorded and returned, never raised: one bad video must not stop a corpus.
"""

from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq

from savos.data.annotations import object_masks
from savos.data.errors import InputError
from savos.data.frames import FrameSource
from savos.inference import FrameResult, Predictor, VideoState
from savos.io.preview import contact_sheet
from savos.io.schema import (
    SCHEMA,
    MaskRow,
    display_id,
    encode_labels,
    failure_key,
    masks_key,
    preview_key,
    to_table,
)

from .corpus import VideoTask
from .redact import log_text, redact
from .remote import load_annotations, open_video
from .storage import OutputUnwritable, join, put_atomic, put_atomic_file, remove, resolve, write_to_output

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


def failure_record(video_id: str, task: dict[str, Any], error_type: str, error: str, trace: str, model: str) -> bytes:
    """The JSON of ``failures/<key>.json``: why a video has no masks, as text any tool can store, the credentials
    of any URI in it removed."""
    record = {
        "video_id": display_id(video_id),
        "task": {k: redact(display_id(v)) if isinstance(v, str) else v for k, v in task.items()},
        "error_type": error_type,
        "error": redact(display_id(error)),
        "traceback": redact(display_id(trace)),
        "model": model,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return json.dumps(record, indent=2).encode()


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


Reply = Callable[["VideoResult"], None]  # takes a video's result (called from the encoder thread)

ROW_GROUP_FRAMES = 256  # frames per Parquet row group: the rows a labeler holds at once


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
        return self.__dict__.copy()


class VideoLabeler:
    """Holds a predictor; labels videos into ``output``, up to ``max_active`` of them in lock-step."""

    def __init__(
        self,
        predictor: Predictor,
        model_id: str,
        output: str,
        preview_every: int = 0,
        max_objects: int | None = None,
        max_active: int = 1,
    ) -> None:
        self.predictor, self.model_id, self.output = predictor, model_id, output
        self.preview_every, self.max_objects, self.max_active = preview_every, max_objects, max_active
        self.fs, _ = resolve(output)

    def wants_preview(self, video_id: str) -> bool:
        """About one video in ``preview_every``, chosen by id so that reruns pick the same ones."""
        return self.preview_every > 0 and zlib.crc32(video_id.encode()) % self.preview_every == 0

    def label(self, task: VideoTask) -> VideoResult:
        (result,) = self.label_many([task])
        return result

    def label_many(self, tasks: Iterable[VideoTask]) -> Iterator[VideoResult]:
        """Label ``tasks`` (read lazily); one result per task, in the order the videos finish.

        A video that cannot be opened, whose frames or annotations are bad, or whose output cannot be written
        gets a failure record; the others go on.
        """
        results: queue.Queue[VideoResult] = queue.Queue()
        writer = _Writer(self)
        try:
            for _ in self._propagate(((task, results.put) for task in tasks), writer):
                yield from _ready(results)
        finally:
            writer.close()  # returns once every result is delivered
        yield from _ready(results)

    def serve(self, feed: TaskFeed) -> None:
        """Label the feed's videos as they are handed in, until it is closed; each result goes to its task's
        reply, from the encoder thread, as soon as the video's output is written.

        One lock-step for the whole life of the labeler: a video joins as soon as one ends, whichever call of
        the actor it came with, so the batch never drains between calls.
        """
        writer = _Writer(self)
        try:
            for _ in self._propagate(feed, writer):
                pass
        finally:
            writer.close()

    def _propagate(self, items: Iterable[tuple[VideoTask, Reply]], writer: _Writer) -> Iterator[None]:
        """Run the lock-step over the videos as the opener thread readies them; frames and ends go to the encoder
        thread."""
        in_progress: set[_Video] = set()  # in the network: the opener is only waited on when there is none
        opener = _Opener(self, items, writer, ahead=self.max_active)

        def opened() -> Iterator[tuple[_Video, VideoState] | None]:
            while (item := opener.take(wait=not in_progress)) is not None or not opener.done:
                if item is not None:  # None: nothing opened yet, the active videos go on
                    in_progress.add(item[0])
                yield item

        try:
            for event in self.predictor.propagate_many(opened(), self.max_active):
                if isinstance(event, FrameResult):
                    labels, scores = event.labels_and_scores()
                    writer.put(_Frame(event.key, event.frame_idx, event.obj_ids, labels, scores))
                else:
                    in_progress.discard(event.key)
                    writer.put(_End(event.key, event.error))
                yield None
        finally:  # stopped by an error that is no video's own, or by the caller: no result, nothing staged left
            opener.stop()
            for video in in_progress:
                writer.put(_Abandon(video))

    def _open(self, video: _Video) -> VideoState:
        task, staging = video.task, Path(video.staging.name)
        video.frames = frames = open_video(task, staging)
        annotations = load_annotations(task, frames, staging)
        objects = sorted({int(i) for ids in annotations.values() for i in np.unique(ids) if i})
        if self.max_objects is not None and len(objects) > self.max_objects:
            raise InputError(task.masks, f"{len(objects)} objects, more than the limit of {self.max_objects}")
        state = self.predictor.init_state(frames)
        for frame_idx, ids in annotations.items():
            for obj_id, mask in object_masks(ids).items():
                self.predictor.add_mask(state, frame_idx, obj_id, mask)
        video.objects = len(objects)
        video.sheet = EvenSample() if self.wants_preview(task.video_id) else None
        return state

    def encode(self, video: _Video, frame: _Frame) -> None:
        """Append one frame's rows to the video's Parquet (staged locally), a row group every
        :data:`ROW_GROUP_FRAMES` frames, so memory stays flat however long the video."""
        assert video.frames is not None
        if video.writer is None:
            video.writer = pq.ParquetWriter(Path(video.staging.name) / "masks.parquet", SCHEMA, compression="zstd")
        if video.sheet is not None:
            video.sheet.offer(frame.frame_idx, frame.labels)
        video_id, name = display_id(video.task.video_id), display_id(video.frames.frame_name(frame.frame_idx))
        video.rows += encode_labels(
            video_id, frame.frame_idx, name, frame.labels, frame.obj_ids, frame.scores.tolist(), self.model_id
        )
        video.count += 1
        video.objects = max(video.objects, len(frame.obj_ids))
        if video.count % ROW_GROUP_FRAMES == 0:
            video.writer.write_table(to_table(video.rows))
            video.rows = []

    def finish(self, video: _Video, error: Exception | None) -> VideoResult:
        """The video's Parquet goes up whole (or its failure record does); its staging folder goes."""
        try:
            if error is not None:
                raise error
            if video.writer is None:  # no frames: the (empty) table is still written
                video.writer = pq.ParquetWriter(Path(video.staging.name) / "masks.parquet", SCHEMA, compression="zstd")
            if video.rows or video.count == 0:
                video.writer.write_table(to_table(video.rows))
            video.writer.close()
            path = Path(video.staging.name) / "masks.parquet"
            write_to_output(
                self.output, lambda: put_atomic_file(self.fs, str(path), mask_path(self.output, video.task.video_id))
            )
            remove(self.fs, failure_path(self.output, video.task.video_id))  # an earlier run's record, if any
            if video.sheet is not None:
                self._write_preview(video.task, video.sheet.items)
            seconds = time.perf_counter() - video.start
            video_id = display_id(video.task.video_id)
            return VideoResult(video_id, "done", video.count, video.objects, seconds, video.started, time.time())
        except OutputUnwritable as err:  # not the video's fault: no record, and the driver stops the run
            return self._result(video, "unwritable", err.problem)
        except Exception as err:  # any failure of this video is its own, recorded, and the job goes on
            return self._failed(video, err)
        finally:
            if video.writer is not None:
                video.writer.close()
            video.staging.cleanup()

    def _failed(self, video: _Video, err: BaseException) -> VideoResult:
        task = video.task
        video_id = display_id(task.video_id)
        logger.warning("video %s failed: %s: %s", log_text(video_id), type(err).__name__, log_text(str(err)))
        trace = "".join(traceback.format_exception(err))
        data = failure_record(task.video_id, task.to_row(), type(err).__name__, str(err), trace, self.model_id)
        error = redact(display_id(f"{type(err).__name__}: {err}"))
        try:
            write_to_output(self.output, lambda: put_atomic(self.fs, failure_path(self.output, task.video_id), data))
        except OutputUnwritable as write_err:
            return self._result(video, "unwritable", write_err.problem)
        except Exception as write_err:  # storage is down past the retry budget: the driver reports it
            logger.error("video %s: cannot record its failure either (%s)", log_text(video_id), write_err)
            return self._result(video, "unrecorded", error)
        return self._result(video, "failed", error)

    def _result(self, video: _Video, status: str, error: str = "") -> VideoResult:
        seconds, video_id = time.perf_counter() - video.start, display_id(video.task.video_id)
        return VideoResult(video_id, status, 0, 0, seconds, video.started, time.time(), error)

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
            logger.warning(
                "video %s: no preview (%s: %s)", log_text(task.video_id), type(err).__name__, log_text(str(err))
            )


@dataclass(eq=False)
class _Video:
    """One video between opening and its result: what the encoder thread accumulates for it."""

    task: VideoTask
    reply: Reply  # where its result goes
    start: float  # perf_counter, for the video's seconds
    staging: tempfile.TemporaryDirectory[str]
    started: float = field(default_factory=time.time)  # wall clock, comparable across the job's processes
    frames: FrameSource | None = None
    sheet: EvenSample | None = None
    writer: pq.ParquetWriter | None = None
    rows: list[MaskRow] = field(default_factory=list)
    count: int = 0
    objects: int = 0
    error: Exception | None = None  # the first encoding error; the video's later frames are dropped


@dataclass(frozen=True)
class _Frame:
    video: _Video
    frame_idx: int
    obj_ids: list[int]
    labels: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class _End:
    video: _Video
    error: Exception | None


@dataclass(frozen=True)
class _Abandon:
    video: _Video


QUEUE_FRAMES = 32  # frames waiting for the encoder at most: the network waits beyond (memory stays bounded)


class _Writer:
    """The encoder thread: RLE, Parquet row groups, uploads and previews, in the order the network hands
    frames over, while the network computes the next ones; each video's result goes to its reply."""

    def __init__(self, labeler: VideoLabeler) -> None:
        self.labeler = labeler
        self.work: queue.Queue[_Frame | _End | _Abandon | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.thread = threading.Thread(target=self._run, name="savos-encoder", daemon=True)
        self.thread.start()

    def put(self, item: _Frame | _End | _Abandon) -> None:
        self.work.put(item)

    def close(self) -> None:
        """No more work: returns once the queue is done and every result delivered."""
        self.work.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (item := self.work.get()) is not None:
            video = item.video
            if isinstance(item, _End):
                video.reply(self.labeler.finish(video, video.error or item.error))
            elif isinstance(item, _Abandon):
                if video.writer is not None:
                    video.writer.close()
                video.staging.cleanup()
            elif video.error is None:
                try:
                    self.labeler.encode(video, item)
                except Exception as err:  # this video fails at its end; the others go on
                    video.error = err


class TaskFeed:
    """Videos handed to a running :meth:`VideoLabeler.serve` over time (by an actor's calls), each with the
    function its result goes to. Thread-safe; iterating it waits for the next video until it is closed."""

    _CLOSED = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()

    def put(self, task: VideoTask, reply: Reply) -> None:
        self._queue.put((task, reply))

    def close(self) -> None:
        """``serve`` returns once the videos handed in so far are done."""
        self._queue.put(self._CLOSED)

    def __iter__(self) -> Iterator[tuple[VideoTask, Reply]]:
        while (item := self._queue.get()) is not self._CLOSED:
            yield item


class _Opener:
    """Opens videos ahead of the lock-step, on a thread of its own: listing a remote frame folder, downloading a
    video file or its masks, reading the first frame and the annotations. That storage I/O then overlaps the
    network's work instead of stalling every active video while a new one joins. At most ``ahead`` videos wait
    opened; one that cannot be opened goes straight to the encoder thread as a failure."""

    _DONE = object()

    def __init__(
        self, labeler: VideoLabeler, items: Iterable[tuple[VideoTask, Reply]], writer: _Writer, ahead: int
    ) -> None:
        self.labeler, self.items, self.writer = labeler, items, writer
        self.opened: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self.stopping = threading.Event()
        self.done = False  # the last video was taken
        self.thread = threading.Thread(target=self._run, name="savos-opener", daemon=True)
        self.thread.start()

    def take(self, wait: bool) -> tuple[_Video, VideoState] | None:
        """The next opened video; ``None`` if there is none yet (and not ``wait``) or none more (:attr:`done`)."""
        try:
            item = self.opened.get(block=wait)
        except queue.Empty:
            return None
        if item is self._DONE:
            self.done = True
            return None
        if isinstance(item, BaseException):  # the items themselves failed (not a video): the caller's error
            raise item
        return item

    def stop(self) -> None:
        """Stop opening; the videos opened that will not run now are closed and their staging removed."""
        self.stopping.set()
        while True:
            try:
                item = self.opened.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, tuple):
                _discard(*item)

    def _run(self) -> None:
        try:
            for task, reply in self.items:
                if self.stopping.is_set():
                    return
                video = _Video(task, reply, time.perf_counter(), tempfile.TemporaryDirectory(prefix="savos-video-"))
                try:
                    state = self.labeler._open(video)
                except Exception as err:  # cannot be read: recorded, and the next video joins instead
                    if self.stopping.is_set():
                        video.staging.cleanup()
                        return
                    self.writer.put(_End(video, err))
                    continue
                if not self._put((video, state)):
                    _discard(video, state)
                    return
        except BaseException as err:
            self._put(err)
            return
        self._put(self._DONE)

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.opened.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def _discard(video: _Video, state: VideoState) -> None:
    """A video opened that never ran: its frame reader stops, its staging goes (the encoder has nothing of it)."""
    close = getattr(state.frames, "close", None)
    if close is not None:
        close()
    video.staging.cleanup()


def _ready(results: queue.Queue[VideoResult]) -> Iterator[VideoResult]:
    while True:
        try:
            yield results.get_nowait()
        except queue.Empty:
            return
