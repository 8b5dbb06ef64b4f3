"""The job's output location: its URI resolved once into storage that knows its keys and the calls it takes.

Layout under OUT (keys from :mod:`savos.io.schema`, ``<id>`` a video's safe key):

- ``masks/video_id=<id>/part-0.parquet``: a video's rows, written once, atomically.
- ``failures/<id>.json``: why a video could not be labelled (error, traceback, the task), instead of its masks.
- ``previews/<id>.png``: a contact sheet (8 to 16 frames with their masks) for a sample of the videos.
- ``_runs/<run_id>.json``: each run's summary.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from savos.files import TEMPORARY_SUFFIX
from savos.io.compaction import compacted_keys
from savos.io.schema import MASKS_FILE, display_id, failure_key, masks_key, preview_key, video_key

from .digests import DigestSet
from .redact import redact
from .retry import RetryPolicy
from .storage import MIN_PARQUET_BYTES, Storage

logger = logging.getLogger(__name__)

# Errors of a write that say the output itself cannot take files (not this video's fault, and no retry helps):
# refused permission, a read-only or full disk, a path through a file, a bucket that is not there.
_OUTPUT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
}


class OutputUnwritable(OSError):
    """The job's output refuses writes for a reason no retry mends: the run stops rather than label the rest of
    the corpus for nothing."""

    def __init__(self, output: str, problem: str, denied: bool = False) -> None:
        self.output, self.problem, self.denied = output, problem, denied  # denied: refused permission
        super().__init__(f"{output}: cannot write the output ({problem})")

    @classmethod
    def from_error(cls, output: str, err: BaseException) -> OutputUnwritable:
        """The refusal ``err`` of a write to ``output``."""
        return cls(output, f"{type(err).__name__}: {err}", isinstance(err, PermissionError))

    def __reduce__(self) -> tuple[Any, ...]:
        return (OutputUnwritable, (self.output, self.problem, self.denied))


def is_output_error(err: BaseException) -> bool:
    """Whether a failed write means the output cannot take any file (see :class:`OutputUnwritable`)."""
    if isinstance(err, PermissionError | FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return True
    return isinstance(err, OSError) and err.errno in _OUTPUT_ERRNOS


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


@dataclass(frozen=True)
class WrittenOutputs:
    """The outputs an output location held when it was listed: keys relative to its root, each kept as a digest
    (:class:`~savos_job.digests.DigestSet`, about 20 bytes per video)."""

    masks: DigestSet  # masks/.../part-0.parquet of complete files
    compacted: DigestSet  # video keys in the compaction index in force
    failures: DigestSet  # failures/<key>.json

    def has_masks(self, video_id: str) -> bool:
        return self.has_masks_file(video_id) or video_key(video_id) in self.compacted

    def has_masks_file(self, video_id: str) -> bool:
        """Whether the video's masks are a file of their own (not rows of a compacted file)."""
        return masks_key(video_id) in self.masks

    def has_failure(self, video_id: str) -> bool:
        return failure_key(video_id) in self.failures


@dataclass(frozen=True)
class OutputLocation:
    """Where a run writes: ``uri`` as given (for messages), its :class:`~savos_job.storage.Storage` and root."""

    uri: str
    storage: Storage
    root: str

    @classmethod
    def open(cls, uri: str, retry: RetryPolicy) -> OutputLocation:
        """The output at ``uri``, every call to it going through ``retry``."""
        storage, root = Storage.open(uri, retry)
        return cls(uri, storage, root)

    # Keys
    def masks(self, video_id: str) -> str:
        """The path of a video's Parquet."""
        return self.storage.join(self.root, masks_key(video_id))

    def failure(self, video_id: str) -> str:
        """The path of a video's failure record."""
        return self.storage.join(self.root, failure_key(video_id))

    def preview(self, video_id: str) -> str:
        """The path of a video's contact sheet."""
        return self.storage.join(self.root, preview_key(video_id))

    def run_summary(self, run_id: str) -> str:
        """The path of a run's summary."""
        return self.storage.join(self.root, "_runs", f"{run_id}.json")

    # Reads
    def written(self) -> WrittenOutputs:
        """What earlier runs left here, listed now: the complete per-video masks files, the compaction index's
        videos and the failure records. A listing of pages of a thousand keys, where looking up each video of the
        corpus would cost one to four requests per video (BENCHMARKS.md, "The driver at scale")."""
        written = WrittenOutputs(DigestSet(), DigestSet(), DigestSet())
        for key, size in self.storage.iter_relative(self.root, "masks"):
            # A file too small to be Parquet is not trusted: it is written again.
            if key.endswith(f"/{MASKS_FILE}") and size >= MIN_PARQUET_BYTES:
                written.masks.add(key)
        for key, _ in self.storage.iter_relative(self.root, "failures"):
            written.failures.add(key)
        keys = self.storage.retry.call(lambda: list(compacted_keys(self.uri)), f"read the index of {self.uri}")
        for key in keys:
            written.compacted.add(key)
        return written

    # Writes: an error that says the output takes no file at all becomes OutputUnwritable
    def put(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` whole (see :meth:`Storage.put <savos_job.storage.Storage.put>`)."""
        self._write(lambda: self.storage.put(path, data))

    def put_file(self, local: str, path: str) -> None:
        """Upload the local file ``local`` to ``path`` whole."""
        self._write(lambda: self.storage.put_file(local, path))

    def copy_from(self, source: Storage, path: str, to: str) -> None:
        """Copy ``path`` of ``source`` to ``to`` whole (see :meth:`Storage.copy_from
        <savos_job.storage.Storage.copy_from>`)."""
        self._write(lambda: self.storage.copy_from(source, path, to))

    def remove(self, path: str) -> None:
        """Delete ``path`` by its exact name; one not there is fine."""
        self.storage.remove(path)

    def _write(self, write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as err:
            if is_output_error(err):
                raise OutputUnwritable.from_error(self.uri, err) from err
            raise

    def check_writable(self) -> None:
        """Write and delete a small object under ``_runs/`` (transient errors retried): an output that refuses
        writes is found before any actor starts, and named."""
        probe = self.storage.join(self.root, "_runs", f".write-check-{uuid.uuid4().hex}")
        self.put(probe, b"savos write check\n")
        try:
            self.remove(probe)
        except Exception as err:  # writing is what the job needs; a probe left behind is harmless
            logger.warning("cannot remove the write check %s (%s)", probe, err)

    def write_summary(self, run_id: str, summary: dict[str, Any]) -> None:
        """The run's summary; a report, so a failure to write it is logged, never raised."""
        try:
            self.put(self.run_summary(run_id), json.dumps(summary, indent=2).encode())
        except Exception as err:
            logger.error("cannot write the run summary to %s: %s", redact(self.uri), err)

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files a killed run left on a local output (an object store has none: a PUT is whole)."""
        fs = self.storage.fs
        if not self.storage.is_local or not fs.exists(self.root):
            return
        for path in fs.find(self.root):
            if path.endswith(TEMPORARY_SUFFIX) and os.path.basename(path).startswith("."):
                logger.info("removing %s, left by an interrupted run", path)
                fs.rm_file(path)
