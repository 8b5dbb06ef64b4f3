"""Open videos: read a task's frames and annotations where they are stored and start its propagation state, on a
thread ahead of the network (listing a remote frame folder, downloading a video file or its masks, reading the
first frame), so that storage I/O overlaps the network's work instead of stalling every active video while a
new one joins."""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from savos.data.annotations import object_masks
from savos.data.errors import InputError
from savos.inference import Predictor, VideoState
from savos.io.corrections import REMOVED_FILE, corrections_digest, corrections_folder, read_removals

from .carry import read_folder
from .corpus import VideoTask
from .remote import load_annotations, open_video
from .retry import RetryPolicy
from .storage import Storage
from .writer import MaskWriter, Reply, VideoInProgress

Opened = tuple[VideoInProgress, VideoState]


class VideoOpener:
    """Opens one task into a video in progress and its predictor state, its annotations added."""

    def __init__(
        self,
        predictor: Predictor,
        retry: RetryPolicy,
        max_objects: int | None = None,
        corrections: str | None = None,
    ) -> None:
        self.predictor, self.retry, self.max_objects = predictor, retry, max_objects
        self.corrections = corrections  # a store of corrected frames, in the corpus's annotation layout

    def open(self, video: VideoInProgress) -> VideoState:
        """Read ``video``'s frames and annotations (into its staging folder where they must be local); raises
        :class:`~savos.data.errors.InputError` naming the file for bad input."""
        task, staging = video.task, Path(video.staging.name)
        video.frames = frames = open_video(task, staging, self.retry)
        corrected, absences = self._corrections(video)
        annotations = [load_annotations(task, frames, staging, self.retry), corrected]
        objects = sorted({int(i) for given in annotations for ids in given.values() for i in np.unique(ids) if i})
        if self.max_objects is not None and len(objects) > self.max_objects:
            raise InputError(task.masks, f"{len(objects)} objects, more than the limit of {self.max_objects}")
        state = self.predictor.init_state(frames)
        for given in annotations:  # a correction comes after the corpus's mask of its frame and object: it wins
            for frame_idx, ids in given.items():
                for obj_id, mask in object_masks(ids).items():
                    self.predictor.add_mask(state, frame_idx, obj_id, mask)
        for frame_idx, obj_id in absences:
            self.predictor.add_absence(state, frame_idx, obj_id)
        video.objects = len(objects)
        return state

    def _corrections(self, video: VideoInProgress) -> tuple[dict[int, np.ndarray], list[tuple[int, int]]]:
        """``{frame_idx: ids}`` of the video's corrected objects in the store, and its ``(frame_idx, obj_id)``
        absences (masks a person removed); none where it has no folder. The digest of what was read goes with
        the video's masks (:mod:`savos_job.carry`)."""
        if self.corrections is None:
            return {}, []
        task, frames, staging = video.task, video.frames, Path(video.staging.name)
        assert frames is not None
        folder = corrections_folder(self.corrections, task.video_id)
        storage, path = Storage.open(folder, self.retry)
        files = read_folder(storage, path)  # one listing, each file read once: for the digest and the absences
        if not files:
            return {}, []
        video.corrections = corrections_digest(files.items())
        corrected: dict[int, np.ndarray] = {}
        if any(name.lower().endswith(".png") for name in files):
            (staging / "corrections").mkdir()
            corrected = load_annotations(
                VideoTask(task.video_id, task.source, folder), frames, staging / "corrections", self.retry
            )
        if REMOVED_FILE not in files:
            return corrected, []
        uri = storage.uri(storage.join(path, REMOVED_FILE))
        absences = []
        for name, obj_ids in read_removals(files[REMOVED_FILE], uri).items():
            frame_idx = frames.frame_index(name)
            if frame_idx is None:
                raise InputError(uri, f"frame {name!r} is not a frame of video {task.video_id!r}")
            absences += [(frame_idx, obj_id) for obj_id in obj_ids]
        return corrected, absences


class OpenAhead:
    """The opener thread: opens the tasks of ``items`` in order and keeps at most ``ahead`` of them waiting; a
    video that cannot be opened goes straight to ``writer`` as a failure, and the next one is opened instead."""

    _DONE = object()

    def __init__(
        self, opener: VideoOpener, items: Iterable[tuple[VideoTask, Reply]], writer: MaskWriter, ahead: int
    ) -> None:
        self.opener, self.items, self.writer = opener, items, writer
        self.opened: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self.stopping = threading.Event()
        self.done = False  # the last video was taken
        self.thread = threading.Thread(target=self._run, name="savos-opener", daemon=True)
        self.thread.start()

    def take(self, wait: bool) -> Opened | None:
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
                video = VideoInProgress(task, reply, tempfile.TemporaryDirectory(prefix="savos-video-"))
                try:
                    state = self.opener.open(video)
                except Exception as err:  # cannot be read: recorded, and the next video joins instead
                    if self.stopping.is_set():
                        video.close()
                        return
                    self.writer.end(video, err)
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


def _discard(video: VideoInProgress, state: VideoState) -> None:
    """A video opened that never ran: its frame reader stops, its staging goes (the writer has nothing of it)."""
    close = getattr(state.frames, "close", None)
    if close is not None:
        close()
    video.close()
