"""Object storage through fsspec: one filesystem per URI, atomic writes, retries on transient errors.

Credentials never pass through here: s3fs reads ``AWS_*`` variables, instance roles or profiles itself, and gcsfs
its own mechanisms.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import fsspec
import fsspec.asyn
import s3fs
from fsspec.implementations.local import LocalFileSystem

from savos.files import write_atomically

from .redact import log_text

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors worth another try: network hiccups, server errors, throttling, timeouts. A missing file, a refused
# credential or bad data is not transient.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, BrokenPipeError)
try:  # s3fs talks through botocore, whose connection errors are not the builtin ones
    from botocore.exceptions import ConnectionError as _BotoConnectionError
    from botocore.exceptions import HTTPClientError as _BotoHTTPClientError

    _TRANSIENT_TYPES += (_BotoConnectionError, _BotoHTTPClientError)
except ImportError:  # pragma: no cover - botocore comes with s3fs
    pass
_TRANSIENT_ERRNOS = {errno.EREMOTEIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.EBUSY}

# The retry budget, per storage operation; the job sets it from --storage-retries in every worker.
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.5


def is_transient(err: BaseException) -> bool:
    """Whether another try may succeed (s3fs reports 5xx answers as ``OSError(EREMOTEIO)``)."""
    if isinstance(err, _TRANSIENT_TYPES):
        return True
    return type(err) is OSError and err.errno in _TRANSIENT_ERRNOS


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
        return cls(output, f"{type(err).__name__}: {err}", isinstance(err, PermissionError))

    def __reduce__(self) -> tuple[Any, ...]:
        return (OutputUnwritable, (self.output, self.problem, self.denied))


def is_output_error(err: BaseException) -> bool:
    """Whether a failed write means the output cannot take any file (see :class:`OutputUnwritable`)."""
    if isinstance(err, PermissionError | FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return True
    return isinstance(err, OSError) and err.errno in _OUTPUT_ERRNOS


def resolve(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem of ``uri`` and the path within it (a plain path is a local folder)."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path.rstrip("/")


def join(fs: fsspec.AbstractFileSystem, *parts: str) -> str:
    """Join path parts with the filesystem's separator."""
    return fs.sep.join(part.strip(fs.sep) if i else part.rstrip(fs.sep) for i, part in enumerate(parts))


def unstrip(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A full URI (``s3://bucket/key``) for a path of ``fs``, so a worker can open it on its own."""
    return fs.unstrip_protocol(path)


def iter_dir(fs: fsspec.AbstractFileSystem, path: str, page: int = 1000) -> Iterator[tuple[str, str]]:
    """``(path, kind)`` of the entries of one folder, in name order, without holding the whole listing; ``kind``
    is ``"directory"``, ``"file"`` or, on a local disk, ``"other"`` (a FIFO, a socket, a link to nowhere).

    S3 lists in pages of up to 1000 keys in byte order, so a listing is streamed a page (one request) at a time.
    Other filesystems have no streaming listing in fsspec; they are listed at once (names only), which a local disk
    or GCS folder of a million videos can afford, and a manifest avoids altogether.
    """
    if isinstance(fs, s3fs.S3FileSystem):
        yield from _iter_s3(fs, path, page)
        return
    entries = with_retries(lambda: fs.ls(path, detail=True), f"list {path}")
    for entry in sorted(entries, key=lambda e: e["name"]):
        yield entry["name"].rstrip(fs.sep), entry["type"]


def _iter_s3(fs: s3fs.S3FileSystem, path: str, page: int) -> Iterator[tuple[str, str]]:
    """One ``list_objects_v2`` request a page, each retried on its own: a continuation token names where the next
    page starts, so an outage in the middle of a long listing loses nothing and repeats nothing."""
    bucket, key, _ = fs.split_path(path)
    prefix = f"{key.rstrip('/')}/" if key else ""
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": page, **fs.req_kw}
    while True:
        reply = with_retries(lambda: s3_request(fs, "list_objects_v2", **request), f"list {path}")
        # Within a page S3 returns sub-folders before files; each is in name order across pages.
        yield from ((f"{bucket}/{p['Prefix'].rstrip('/')}", "directory") for p in reply.get("CommonPrefixes", []))
        yield from ((f"{bucket}/{c['Key']}", "file") for c in reply.get("Contents", []) if c["Key"] != prefix)
        if not reply.get("IsTruncated"):
            return
        request["ContinuationToken"] = reply["NextContinuationToken"]


def s3_request(fs: s3fs.S3FileSystem, operation: str, **request: Any) -> dict[str, Any]:
    """One S3 API request through ``fs``'s client, its credentials and endpoint. s3fs has no public call for a
    single request (a listing page with its continuation token): its private ``_call_s3`` is used here only,
    capped in pyproject.toml and checked by tests/jobs/test_storage.py."""
    return dict(fsspec.asyn.sync(fs.loop, fs._call_s3, operation, **request))


def with_retries(action: Callable[[], T], what: str) -> T:
    """Run ``action``; on a transient error wait (exponential backoff with jitter) and try again, up to
    :data:`RETRY_ATTEMPTS` tries in all."""
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            return action()
        except Exception as err:
            _wait_or_raise(err, attempt, what)
    raise AssertionError("unreachable")


def resumable(open_items: Callable[[], Iterator[T]], what: str) -> Iterator[T]:
    """The items of a stream read from storage (a manifest, line by line or batch by batch); when a transient error
    breaks it off, it is opened again after a backoff and the items already yielded are skipped. The retry budget
    counts failures in a row: each item read starts it afresh."""
    yielded, failures = 0, 0
    while True:
        try:
            for index, item in enumerate(open_items()):
                if index >= yielded:
                    yield item
                    yielded, failures = yielded + 1, 0
            return
        except Exception as err:
            failures += 1
            _wait_or_raise(err, failures, what)


def _wait_or_raise(err: Exception, attempt: int, what: str) -> None:
    """After failed try number ``attempt``: re-raise ``err`` if it is permanent or the budget is spent, else wait."""
    if not is_transient(err) or attempt >= RETRY_ATTEMPTS:
        raise err
    delay = RETRY_BASE_DELAY * 2 ** (attempt - 1) * (1 + random.random())
    logger.warning(
        "%s failed (%s: %s); retry %d/%d in %.1fs",
        log_text(what),
        type(err).__name__,
        log_text(str(err)),
        attempt,
        RETRY_ATTEMPTS - 1,
        delay,
    )
    time.sleep(delay)


def isdir(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """Whether ``path`` is a folder, with retries (s3fs answers a listing request, which may fail like any other)."""
    return bool(with_retries(lambda: fs.isdir(path), f"check {path}"))


def exists(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """Whether ``path`` exists, with retries (s3fs answers False to some errors, raises others)."""
    return bool(with_retries(lambda: fs.exists(path), f"check {path}"))


def remove(fs: fsspec.AbstractFileSystem, path: str) -> None:
    """Delete one file or object by its exact name (``fs.rm`` would expand ``[``, ``*`` and ``?`` in it), with
    retries; one already gone is fine."""

    def remove_file() -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)

    with_retries(remove_file, f"remove {path}")


# The smallest Parquet file: "PAR1", a footer length and "PAR1" again. A smaller file under a final name was not
# written by the job (it writes whole files only) and is not trusted as a finished video.
MIN_PARQUET_BYTES = 12


def has_complete_file(fs: fsspec.AbstractFileSystem, path: str, min_bytes: int = MIN_PARQUET_BYTES) -> bool:
    """Whether ``path`` exists with at least ``min_bytes`` (one metadata request, like an existence check)."""

    def size() -> int:
        try:
            return int(fs.info(path).get("size") or 0)
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder of the path goes: not there either
            return -1

    found = with_retries(size, f"check {path}")
    if 0 <= found < min_bytes:
        logger.warning("%s has %d bytes, too few to be complete: it is written again", path, found)
    return found >= min_bytes


def write_to_output(output: str, write: Callable[[], object]) -> None:
    """Run one write to the job's ``output``; an error that says the output takes no file at all becomes
    :class:`OutputUnwritable` (any other error is raised as it is)."""
    try:
        write()
    except Exception as err:
        if is_output_error(err):
            raise OutputUnwritable.from_error(output, err) from err
        raise


def check_writable(output: str) -> None:
    """Write and delete a small object under ``output/_runs/`` (transient errors retried): an output that refuses
    writes is found before any actor starts, and named."""
    fs, root = resolve(output)
    probe = join(fs, root, "_runs", f".write-check-{uuid.uuid4().hex}")
    write_to_output(output, lambda: put_atomic(fs, probe, b"savos write check\n"))
    try:
        remove(fs, probe)
    except Exception as err:  # writing is what the job needs; a probe left behind is harmless
        logger.warning("cannot remove the write check %s (%s)", probe, err)


def put_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` so that ``path`` either does not exist or is complete.

    On object stores a single PUT is atomic. On a local disk the bytes go to a temporary name in the same folder
    and are renamed into place.
    """
    if isinstance(fs, LocalFileSystem):
        write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))
    else:
        with_retries(lambda: fs.pipe_file(path, data), f"write {path}")


def put_atomic_file(fs: fsspec.AbstractFileSystem, local: str, path: str) -> None:
    """Like :func:`put_atomic`, from a local file (uploaded in one PUT, or a multipart upload, which S3 also
    makes visible only once complete), without holding it in memory."""
    if isinstance(fs, LocalFileSystem):
        write_atomically(path, lambda tmp: shutil.copyfile(local, tmp))
    else:
        with_retries(lambda: fs.put_file(local, path), f"write {path}")


def read_bytes(uri: str) -> bytes:
    """All bytes of one object or file, with retries."""
    fs, path = resolve(uri)
    return with_retries(lambda: fs.cat_file(path), f"read {uri}")
