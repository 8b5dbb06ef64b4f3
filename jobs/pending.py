"""What a run has left to label: the corpus's videos as the listing streams in, less those already done, and
everything the listing met that is not a video to label, written down for the run summary."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from savos.io.schema import display_id

from .carry import CarryOver
from .config import JobConfig
from .corpus import RefusedRow, VideoTask, discover
from .digests import DigestSet
from .output import OutputLocation, failure_record
from .redact import log_text, redact

logger = logging.getLogger(__name__)

LISTED_AT_MOST = 100  # entries of each kind kept for the summary (the counts are complete): the driver stays flat


@dataclass
class Examples:
    """A count, and the first :data:`LISTED_AT_MOST` items."""

    count: int = 0
    first: list[Any] = field(default_factory=list)

    def add(self, item: Any) -> None:
        self.count += 1
        if len(self.first) < LISTED_AT_MOST:
            self.first.append(item)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": self.first}


@dataclass
class ListingNotes:
    """What the listing met besides videos to label."""

    duplicate_ids: Examples = field(default_factory=Examples)  # a later row with an id seen before: skipped
    refused_rows: Examples = field(default_factory=Examples)  # manifest rows naming no usable video
    entries_skipped: Examples = field(default_factory=Examples)  # entries of a folder that are not videos
    failed_before: Examples = field(default_factory=Examples)  # videos with a failure record, not retried

    def to_dict(self) -> dict[str, Any]:
        return {
            "duplicate_ids_skipped": self.duplicate_ids.to_dict(),
            "manifest_rows_refused": self.refused_rows.to_dict(),
            "entries_skipped": self.entries_skipped.to_dict(),
            "videos_failed_before": self.failed_before.to_dict(),
        }


def pending_tasks(
    config: JobConfig, output: OutputLocation, notes: ListingNotes | None = None, carry: CarryOver | None = None
) -> Iterator[VideoTask]:
    """The corpus's videos that still need labelling, as the listing streams in.

    With ``carry``, a video that an earlier output version has masks for, and that has no new corrections, is
    handed to it to be copied instead (:mod:`savos_job.carry`).

    Skipped: a video with complete masks; one with a failure record unless ``retry_failed``; an id seen before in
    this listing (a manifest may repeat one: the first row is the one labelled). A manifest row that names no
    usable video gets a failure record when it has an id (so it has an outcome like any video), and is noted in
    ``notes`` in any case.

    What earlier runs wrote is listed once, now (:meth:`~savos_job.output.OutputLocation.written`), and the ids met
    are remembered: both as digests, about 20 bytes per video.
    """
    notes = notes if notes is not None else ListingNotes()
    written = output.written()
    seen = DigestSet()

    def first_time(video_id: str) -> bool:
        if seen.add(video_id):
            return True
        logger.warning("video id %s appears again in the corpus: this row is skipped", log_text(video_id))
        notes.duplicate_ids.add(display_id(video_id))
        return False

    def to_label(task: VideoTask) -> bool:
        if not first_time(task.video_id) or written.has_masks(task.video_id):
            return False
        if carry is not None and carry.takes(task):
            carry.carry(task)
            return False
        if config.retry_failed or not written.has_failure(task.video_id):
            return True
        notes.failed_before.add(display_id(task.video_id))
        return False

    def refused(row: RefusedRow) -> None:
        logger.warning("%s", log_text(str(row)))
        notes.refused_rows.add({"row": row.row, "video_id": row.video_id, "problem": redact(row.problem)})
        video_id = row.video_id
        # An id seen before is a duplicate; one labelled before keeps its masks and gets no record.
        if video_id is not None and first_time(video_id) and not written.has_masks(video_id):
            task = {"manifest": row.manifest, "row": row.row}
            record = failure_record(video_id, task, "ManifestRowError", str(row), "", "")
            output.put(output.failure(video_id), record)

    def skipped(entry: str, why: str) -> None:
        logger.warning("skipped %s: %s", log_text(entry), why)
        notes.entries_skipped.add({"entry": redact(display_id(entry)), "why": why})

    listing = discover(
        config.input,
        config.layout,
        retry=output.storage.retry,
        allow_schemes=config.allow_schemes,
        on_skip=skipped,
        on_refused=refused,
    )
    tasks = (task for task in listing if to_label(task))
    return itertools.islice(tasks, config.max_videos) if config.max_videos is not None else tasks
