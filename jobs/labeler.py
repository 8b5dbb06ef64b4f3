"""Label videos end to end: open each where it is stored, propagate, encode and write one Parquet object per video.

Three jobs on three threads: the opener (:mod:`savos_job.opener`) reads videos ahead of the network; the caller's
thread runs several videos through the network in lock-step (:meth:`~savos.inference.Predictor.propagate_many`);
the writer (:mod:`savos_job.writer`) encodes their frames and uploads each video's output. Output layout:
:mod:`savos_job.output`.

A video's failure is recorded and returned, never raised: one bad video must not stop a corpus.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator
from typing import Any

from savos.calibration import JCalibration
from savos.inference import FrameResult, Predictor

from .corpus import VideoTask
from .opener import OpenAhead, Opened, VideoOpener
from .output import OutputLocation
from .writer import MaskWriter, Reply, VideoInProgress, VideoResult


class VideoLabeler:
    """Holds a predictor; labels videos into ``output``, up to ``max_active`` of them in lock-step."""

    def __init__(
        self,
        predictor: Predictor,
        model_id: str,
        output: OutputLocation,
        preview_every: int = 0,
        max_objects: int | None = None,
        max_active: int = 1,
        run_id: str | None = None,
        corrections: str | None = None,
        calibration: JCalibration | None = None,
        backward: bool = False,
    ) -> None:
        self.predictor, self.model_id, self.output = predictor, model_id, output
        self.run_id = run_id  # recorded in each video's file
        self.calibration = calibration  # the model's score -> J map, for each row's j_estimate
        self.backward = backward  # propagate backwards from annotations after frame 0 too
        self.preview_every, self.max_active = preview_every, max_active
        self.opener = VideoOpener(predictor, output.storage.retry, max_objects, corrections)

    def run(self, tasks: Iterable[VideoTask]) -> Iterator[VideoResult]:
        """Label ``tasks`` (read lazily); one result per task, in the order the videos finish.

        A video that cannot be opened, whose frames or annotations are bad, or whose output cannot be written
        gets a failure record; the others go on.
        """
        results: queue.Queue[VideoResult] = queue.Queue()
        writer = MaskWriter(self.output, self.model_id, self.preview_every, self.run_id, self.calibration)
        try:
            for _ in self._propagate(((task, results.put) for task in tasks), writer):
                yield from _ready(results)
        finally:
            writer.close()  # returns once every result is delivered
        yield from _ready(results)

    def run_one(self, task: VideoTask) -> VideoResult:
        """Label one video: :meth:`run` of a single task."""
        (result,) = self.run([task])
        return result

    def serve(self, feed: TaskFeed) -> None:
        """Label the feed's videos as they are handed in, until it is closed; each result goes to its task's
        reply, from the writer thread, as soon as the video's output is written.

        One lock-step for the whole life of the labeler: a video joins as soon as one ends, whichever call of
        the actor it came with, so the batch never drains between calls.
        """
        writer = MaskWriter(self.output, self.model_id, self.preview_every, self.run_id, self.calibration)
        try:
            for _ in self._propagate(feed, writer):
                pass
        finally:
            writer.close()

    def _propagate(self, items: Iterable[tuple[VideoTask, Reply]], writer: MaskWriter) -> Iterator[None]:
        """Run the lock-step over the videos as the opener thread readies them; frames and ends go to the
        writer thread."""
        in_progress: set[VideoInProgress] = set()  # in the network: the opener is only waited on when there is none
        ahead = OpenAhead(self.opener, items, writer, ahead=self.max_active)

        def opened() -> Iterator[Opened | None]:
            while (item := ahead.take(wait=not in_progress)) is not None or not ahead.done:
                if item is not None and not self._backwards(item, writer):
                    continue  # its backward pass failed: the video's failure went to the writer
                if item is not None:  # None: nothing opened yet, the active videos go on
                    in_progress.add(item[0])
                yield item

        try:
            for event in self.predictor.propagate_many(opened(), self.max_active):
                if isinstance(event, FrameResult):
                    labels, scores = event.labels_and_scores()
                    writer.frame(event.key, event.frame_idx, event.obj_ids, labels, scores)
                else:
                    in_progress.discard(event.key)
                    writer.end(event.key, event.error)
                yield None
        finally:  # stopped by an error that is no video's own, or by the caller: no result, nothing staged left
            ahead.stop()
            for video in in_progress:
                writer.abandon(video)

    def _backwards(self, item: Opened, writer: MaskWriter) -> bool:
        """Run a video's backward passes as it joins (on this, the compute thread: all network work is); False
        if its frames could not be read again (the video fails, alone)."""
        if not self.backward:
            return True
        video, state = item
        try:
            self.predictor.propagate_backward(state)
        except Exception as err:
            writer.end(video, err)
            return False
        return True


class TaskFeed:
    """Videos handed to a running :meth:`VideoLabeler.serve` over time (by an actor's calls), each with the
    function its result goes to. Thread-safe; iterating it waits for the next video until it is closed."""

    _CLOSED = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()

    def put(self, task: VideoTask, reply: Reply) -> None:
        """Hand in a video; its result goes to ``reply``."""
        self._queue.put((task, reply))

    def close(self) -> None:
        """``serve`` returns once the videos handed in so far are done."""
        self._queue.put(self._CLOSED)

    def __iter__(self) -> Iterator[tuple[VideoTask, Reply]]:
        while (item := self._queue.get()) is not self._CLOSED:
            yield item


def _ready(results: queue.Queue[VideoResult]) -> Iterator[VideoResult]:
    while True:
        try:
            yield results.get_nowait()
        except queue.Empty:
            return
