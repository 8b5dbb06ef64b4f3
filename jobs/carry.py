"""A new output version from an earlier one: the videos whose corrections are new are labelled again; every
other video's masks (and preview) are carried over, copied by the object store itself, without recomputation.

A video's corrections are "new" when the digest of its folder in the corrections store
(:func:`~savos.io.corrections.corrections_digest`) differs from the one recorded in its earlier masks file
(:func:`~savos.io.schema.corrections_of`: none when it was labelled without corrections). The earlier version
must come from the same model and the same test-time settings (read from its run summaries), or carrying its
masks would mix two models in one version: the run is refused before it starts.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from savos.data.errors import InputError
from savos.io.compaction import read_compacted
from savos.io.corrections import corrections_digest, corrections_folder
from savos.io.schema import conform, corrections_of, display_id, preview_key, video_key

from .config import JobConfig
from .corpus import VideoTask
from .digests import DigestSet
from .output import OutputLocation, WrittenOutputs
from .redact import log_text, redact
from .retry import RetryPolicy
from .storage import Storage

logger = logging.getLogger(__name__)

# Options that change what a video's masks are: an earlier version carried into this one must share them.
MASK_SETTINGS = ("checkpoint", "test_time", "max_pixels", "max_objects", "backward")
COPIES_IN_FLIGHT = 64  # bounded, so the driver stays flat however many videos are carried


def read_folder(storage: Storage, folder: str) -> dict[str, bytes]:
    """Every file of one video's folder of a corrections store, by its name within the folder (none when the
    folder is not there): what the video's corrections digest is made of."""
    return {key: storage.read(storage.join(folder, key)) for key, _ in storage.iter_relative(folder)}


def video_corrections_digest(store: str | None, video_id: str, retry: RetryPolicy) -> str | None:
    """The digest of ``video_id``'s corrections in ``store``; None when it has none (or there is no store)."""
    if store is None:
        return None
    storage, folder = Storage.open(corrections_folder(store, video_id), retry)
    files = read_folder(storage, folder)
    return corrections_digest(files.items()) if files else None


@dataclass
class CarryCounts:
    carried: int = 0  # masks copied from the earlier version
    previews: int = 0  # of which the contact sheet too
    failed: int = 0  # storage failed past the retry budget: neither copied nor labelled (a rerun finishes them)
    relabelled: list[str] = field(default_factory=list)  # with new corrections: labelled again (first 100 ids)
    relabelled_count: int = 0


class CarryOver:
    """Decides, video by video, whether a video is labelled or carried from ``previous``, and carries it.

    The earlier version and the corrections store are listed once, at the start; copies run on a few threads
    beside the labelling. :meth:`close` waits for them and gives the counts for the run summary.
    """

    def __init__(self, config: JobConfig, output: OutputLocation, previous: OutputLocation) -> None:
        check_same_settings(config, previous)
        self.output, self.previous, self.store = output, previous, config.corrections
        self.written: WrittenOutputs = previous.written()
        self.previews = DigestSet()
        for key, _ in previous.storage.iter_relative(previous.root, "previews"):
            self.previews.add(key)
        self.corrected = self._corrected_videos()
        self.counts = CarryCounts()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(COPIES_IN_FLIGHT)
        self._copies = ThreadPoolExecutor(max_workers=16, thread_name_prefix="savos-carry")

    @classmethod
    def open(cls, config: JobConfig, output: OutputLocation) -> CarryOver | None:
        """The carry-over of ``config.carry_from``; None when the run carries nothing."""
        if config.carry_from is None:
            return None
        return cls(config, output, OutputLocation.open(config.carry_from, config.retry_policy()))

    def _corrected_videos(self) -> DigestSet:
        """The video keys that have a folder of corrections in the store."""
        keys = DigestSet()
        if self.store is None:
            return keys
        storage, root = Storage.open(self.store, self.previous.storage.retry)
        for key, _ in storage.iter_relative(root):
            if "/" in key:
                keys.add(key.split("/", 1)[0])
        return keys

    def takes(self, task: VideoTask) -> bool:
        """Whether ``task`` is carried: its masks are in the earlier version and it has no new corrections."""
        video_id = task.video_id
        if not self.written.has_masks(video_id):
            return False
        if video_key(video_id) in self.corrected:
            now = video_corrections_digest(self.store, video_id, self.previous.storage.retry)
            if now is not None and now != self._recorded_corrections(video_id):
                self._note_relabelled(video_id)
                return False
        return True

    def _recorded_corrections(self, video_id: str) -> str | None:
        """The corrections digest the earlier masks were labelled with. A compacted video keeps none: it is
        taken as labelled without corrections (so corrections in the store now are new to it)."""
        if not self.written.has_masks_file(video_id):
            return None
        path, fs = self.previous.masks(video_id), self.previous.storage.fs

        def read() -> str | None:
            with fs.open(path, "rb") as f:
                return corrections_of(pq.ParquetFile(f).schema_arrow)

        return self.previous.storage.retry.call(read, f"read the metadata of {path}")

    def _note_relabelled(self, video_id: str) -> None:
        with self._lock:
            self.counts.relabelled_count += 1
            if len(self.counts.relabelled) < 100:
                self.counts.relabelled.append(display_id(video_id))
        logger.info("%s has new corrections: it is labelled again", log_text(video_id))

    def carry(self, task: VideoTask) -> None:
        """Copy ``task``'s outputs from the earlier version (on a copy thread; at most
        :data:`COPIES_IN_FLIGHT` wait at once)."""
        self._slots.acquire()
        future = self._copies.submit(self._copy, task.video_id)
        future.add_done_callback(self._settled)

    def _copy(self, video_id: str) -> bool:
        """Copy one video's masks (and preview); whether a preview came with them."""
        previous, output = self.previous, self.output
        if self.written.has_masks_file(video_id):  # as listed at the start: no request per video to find out
            output.copy_from(previous.storage, previous.masks(video_id), output.masks(video_id))
        else:  # compacted in the earlier version: its rows, read from their row group, become a per-video file
            table = previous.storage.retry.call(
                lambda: read_compacted(previous.uri, video_key(video_id)), f"read {video_id} from {previous.uri}"
            )
            if table is None:
                raise FileNotFoundError(f"{video_id} is no longer in {redact(previous.uri)}")
            output.put(output.masks(video_id), _parquet_bytes(table))
        if preview_key(video_id) not in self.previews:
            return False
        try:
            output.copy_from(previous.storage, previous.preview(video_id), output.preview(video_id))
        except Exception as err:  # a contact sheet is a nicety: its video is carried all the same
            logger.warning("cannot carry the preview of %s: %s", log_text(video_id), err)
            return False
        return True

    def _settled(self, future: Future[bool]) -> None:
        self._slots.release()
        with self._lock:
            if future.exception() is None:
                self.counts.carried += 1
                self.counts.previews += int(bool(future.result()))
            else:
                self.counts.failed += 1
                logger.error("cannot carry a video from %s: %s", redact(self.previous.uri), future.exception())

    def close(self) -> CarryCounts:
        """Wait for the copies; the counts."""
        self._copies.shutdown(wait=True)
        return self.counts


def carry_summary(carry: CarryOver | None) -> dict[str, Any]:
    """The run summary's part about carrying (zeros for a run that carries nothing)."""
    counts = carry.close() if carry is not None else CarryCounts()
    if carry is not None:
        logger.info(
            "carried %d videos from %s, %d failed; %d had new corrections and were labelled again",
            counts.carried,
            redact(carry.previous.uri),
            counts.failed,
            counts.relabelled_count,
        )
    return {
        "carried_from": redact(carry.previous.uri) if carry is not None else None,
        "videos_carried": counts.carried,
        "previews_carried": counts.previews,
        "videos_carry_failed": counts.failed,
        "videos_with_new_corrections": {"count": counts.relabelled_count, "first": counts.relabelled},
    }


def check_same_settings(config: JobConfig, previous: OutputLocation) -> None:
    """Refuse to carry from an output labelled with another model or other test-time settings (read from its
    latest run summary), or from one that is not a job's output at all."""
    summaries = sorted(previous.storage.iter_files(previous.storage.join(previous.root, "_runs")))
    runs = [path for path, _ in summaries if path.endswith(".json")]
    if not runs:
        raise InputError(previous.uri, "no run summary under _runs/: not an output of this job (--carry-from)")
    latest = json.loads(previous.storage.read(runs[-1]))
    before = {**latest.get("config", {}), "test_time": latest.get("test_time")}
    now = {**config.to_dict(), "test_time": config.test_time().to_dict()}
    defaults = JobConfig(input="-", output="-").to_dict()  # a setting a summary lacks predates it: its default
    differ = [
        name
        for name in MASK_SETTINGS
        if _comparable(before.get(name, defaults.get(name))) != _comparable(now.get(name))
    ]
    if differ:
        said = "; ".join(f"{name}: {before.get(name)!r} then, {now.get(name)!r} now" for name in differ)
        raise InputError(
            previous.uri, f"labelled with other settings ({said}): its masks cannot be carried (--carry-from)"
        )


def _comparable(value: Any) -> Any:
    """JSON lists and tuples compare alike."""
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def _parquet_bytes(table: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(conform(table), buffer, compression="zstd")
    return buffer.getvalue()
