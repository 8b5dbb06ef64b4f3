"""Object storage through fsspec: a :class:`Storage` is one filesystem and the retry policy its calls go through.

Credentials never pass through here: s3fs reads ``AWS_*`` variables, instance roles or profiles itself, and gcsfs
its own mechanisms.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import fsspec.asyn
import s3fs
from fsspec.implementations.local import LocalFileSystem

from savos.files import write_atomically

from .retry import RetryPolicy

logger = logging.getLogger(__name__)


def resolve(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem of ``uri`` and the path within it (a plain path is a local folder), with the library's own
    retry settings: for a reader of the job's outputs, not the job (which opens :class:`Storage`)."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path.rstrip("/")


def join(fs: fsspec.AbstractFileSystem, *parts: str) -> str:
    """Join path parts with the filesystem's separator."""
    return fs.sep.join(part.strip(fs.sep) if i else part.rstrip(fs.sep) for i, part in enumerate(parts))


# The smallest Parquet file: "PAR1", a footer length and "PAR1" again. A smaller file under a final name was not
# written by the job (it writes whole files only) and is not trusted as a finished video.
MIN_PARQUET_BYTES = 12


@dataclass(frozen=True)
class Storage:
    """One filesystem and the :class:`~savos_job.retry.RetryPolicy` every call to it goes through (transient errors
    retried, permanent ones raised at once)."""

    fs: fsspec.AbstractFileSystem
    retry: RetryPolicy

    @classmethod
    def open(cls, uri: str, retry: RetryPolicy) -> tuple[Storage, str]:
        """The storage of ``uri`` and the path within it. On S3, botocore's retries are the policy's and s3fs's
        own layer is off (see :mod:`savos_job.retry`)."""
        protocol, _ = fsspec.core.split_protocol(uri)
        options = retry.s3_options() if protocol in ("s3", "s3a") else {}
        fs, path = fsspec.core.url_to_fs(uri, **options)
        if isinstance(fs, s3fs.S3FileSystem):
            fs.retries = 1  # one try per request from s3fs: botocore's standard mode retries what it would
        return cls(fs, retry), path.rstrip("/")

    def join(self, *parts: str) -> str:
        """Path parts joined with the filesystem's separator."""
        return join(self.fs, *parts)

    def uri(self, path: str) -> str:
        """A full URI (``s3://bucket/key``) for a path, so a worker can open it on its own."""
        return str(self.fs.unstrip_protocol(path))

    @property
    def is_local(self) -> bool:
        """A local disk: files are written under a temporary name and renamed, not PUT."""
        return isinstance(self.fs, LocalFileSystem)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists (s3fs answers False to some errors, raises others)."""
        return bool(self.retry.call(lambda: self.fs.exists(path), f"check {path}"))

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a folder (s3fs answers with a listing request, which may fail like any other)."""
        return bool(self.retry.call(lambda: self.fs.isdir(path), f"check {path}"))

    def ls(self, path: str) -> list[str]:
        """The paths in one folder, at once."""
        return list(self.retry.call(lambda: self.fs.ls(path, detail=False), f"list {path}"))

    def read(self, path: str) -> bytes:
        """All bytes of one object or file."""
        return bytes(self.retry.call(lambda: self.fs.cat_file(path), f"read {path}"))

    def remove(self, path: str) -> None:
        """Delete one file or object by its exact name (``fs.rm`` would expand ``[``, ``*`` and ``?`` in it); one
        already gone is fine."""

        def remove_file() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)

        self.retry.call(remove_file, f"remove {path}")

    def has_complete_file(self, path: str, min_bytes: int = MIN_PARQUET_BYTES) -> bool:
        """Whether ``path`` exists with at least ``min_bytes`` (one metadata request, like an existence check)."""

        def size() -> int:
            try:
                return int(self.fs.info(path).get("size") or 0)
            except (FileNotFoundError, NotADirectoryError):  # a file where a folder of the path goes: not there
                return -1

        found = self.retry.call(size, f"check {path}")
        if 0 <= found < min_bytes:
            logger.warning("%s has %d bytes, too few to be complete: it is written again", path, found)
        return found >= min_bytes

    def put(self, path: str, data: bytes) -> None:
        """Write ``data`` so that ``path`` either does not exist or is complete.

        On object stores a single PUT is atomic. On a local disk the bytes go to a temporary name in the same
        folder and are renamed into place.
        """
        if self.is_local:
            write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))
        else:
            self.retry.call(lambda: self.fs.pipe_file(path, data), f"write {path}")

    def put_file(self, local: str, path: str) -> None:
        """Like :meth:`put`, from a local file (uploaded in one PUT, or a multipart upload, which S3 also makes
        visible only once complete), without holding it in memory."""
        if self.is_local:
            write_atomically(path, lambda tmp: shutil.copyfile(local, tmp))
        else:
            self.retry.call(lambda: self.fs.put_file(local, path), f"write {path}")

    def copy_from(self, source: Storage, path: str, to: str) -> None:
        """Copy ``path`` of ``source`` to ``to`` here, whole. Within one object store the store copies it
        (S3 CopyObject: no bytes pass through this process; ``cp_file``, as ``copy`` would expand glob
        characters in a key); between stores the bytes are read and written."""
        if source.fs is self.fs and not self.is_local:
            self.retry.call(lambda: self.fs.cp_file(path, to), f"copy {path} to {to}")
        elif source.is_local and self.is_local:
            write_atomically(to, lambda tmp: shutil.copyfile(path, tmp))
        else:
            self.put(to, source.read(path))

    def iter_dir(self, path: str, page: int = 1000) -> Iterator[tuple[str, str]]:
        """``(path, kind)`` of the entries of one folder, in name order, without holding the whole listing;
        ``kind`` is ``"directory"``, ``"file"`` or, on a local disk, ``"other"`` (a FIFO, a socket, a link to
        nowhere).

        S3 lists in pages of up to 1000 keys in byte order, so a listing is streamed a page (one request) at a
        time. Other filesystems have no streaming listing in fsspec; they are listed at once (names only), which
        a local disk or GCS folder of a million videos can afford, and a manifest avoids altogether.
        """
        if isinstance(self.fs, s3fs.S3FileSystem):
            yield from self._iter_s3(self.fs, path, page)
            return
        entries = self.retry.call(lambda: self.fs.ls(path, detail=True), f"list {path}")
        for entry in sorted(entries, key=lambda e: e["name"]):
            yield entry["name"].rstrip(self.fs.sep), entry["type"]

    def iter_relative(self, root: str, *under: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every file under ``root`` (or its sub-folder ``under``), as :meth:`iter_files`
        lists them, each key relative to ``root``."""
        cut = len(root.rstrip(self.fs.sep)) + 1
        for path, size in self.iter_files(self.join(root, *under)):
            yield path[cut:], size

    def iter_files(self, path: str, page: int = 1000) -> Iterator[tuple[str, int]]:
        """``(path, size)`` of every file under ``path``, at any depth, without holding the whole listing: on S3 a
        page of keys a request (each retried on its own), on a local disk a folder at a time; other filesystems
        are listed at once. Nothing when ``path`` is not there."""
        if isinstance(self.fs, s3fs.S3FileSystem):
            yield from self._iter_s3_files(self.fs, path, page)
        elif isinstance(self.fs, LocalFileSystem):
            for folder, _, names in os.walk(path):
                for name in names:
                    with contextlib.suppress(FileNotFoundError):  # gone since the folder was read
                        yield f"{folder}/{name}", os.stat(f"{folder}/{name}").st_size
        else:
            found = self.retry.call(lambda: self.fs.find(path, detail=True), f"list {path}")
            yield from ((name, int(entry.get("size") or 0)) for name, entry in sorted(found.items()))

    def _iter_s3_files(self, fs: s3fs.S3FileSystem, path: str, page: int) -> Iterator[tuple[str, int]]:
        bucket, key, _ = fs.split_path(path)
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{key.rstrip('/')}/", "MaxKeys": page, **fs.req_kw}
        while True:
            reply = self.retry.call(lambda: s3_request(fs, "list_objects_v2", **request), f"list {path}")
            yield from ((f"{bucket}/{c['Key']}", int(c["Size"])) for c in reply.get("Contents", []))
            if not reply.get("IsTruncated"):
                return
            request["ContinuationToken"] = reply["NextContinuationToken"]

    def _iter_s3(self, fs: s3fs.S3FileSystem, path: str, page: int) -> Iterator[tuple[str, str]]:
        """One ``list_objects_v2`` request a page, each retried on its own: a continuation token names where the
        next page starts, so an outage in the middle of a long listing loses nothing and repeats nothing."""
        bucket, key, _ = fs.split_path(path)
        prefix = f"{key.rstrip('/')}/" if key else ""
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": page, **fs.req_kw}
        while True:
            reply = self.retry.call(lambda: s3_request(fs, "list_objects_v2", **request), f"list {path}")
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
