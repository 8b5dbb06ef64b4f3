"""Compaction of a job output: many small per-video Parquet files merged into a few large ones, with an index.

The job writes one file per video (``masks/video_id=<key>/part-0.parquet``): its unit of resume. At a million videos
that is a million small objects, which listings and query engines crawl through. :func:`compact` merges the per-
video files of finished videos into ``compacted/<generation>/part-NNNNN.parquet`` (rows sorted by video, frame and
object; each video whole in one row group of a few thousand rows, so reading one video reads one row group) and
records where each video is in an index, ``_compaction/index-<generation>.parquet``: video key and id, file, row
group and offset in it, rows, frames, objects, model, and the job run that wrote it (from the per-video file's
metadata). ``_compaction/CURRENT`` names the index in force; it is
written last, in one atomic write: that is the swap. Only then are the per-video files removed.

Safe to interrupt: before the swap, nothing a reader sees has changed (the new files are not referenced yet;
the next compaction removes them); after it, a per-video file still there is the same rows as its compacted
copy, and readers take the compacted one (:func:`dataset_files`, :func:`load_index`). A rerun finishes the job.

Safe beside a running job: a compaction takes only the per-video files it listed at its start and removes only
those; a video the job writes meanwhile stays per-video until the next compaction. Two compactions of one output
at the same time are not supported.

Readers: :func:`savos.io.read_video_masks`, ``savos export``, ``savos report`` use the index;
``dataset_files(OUT)`` is the exact file list for DuckDB, pyarrow datasets or ``ray.data.read_parquet``.
"""

from __future__ import annotations

import json
import logging
import posixpath
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from savos.files import write_atomically

from .schema import SCHEMA, run_id_of

logger = logging.getLogger(__name__)

CURRENT = "_compaction/CURRENT"
PER_VIDEO_FILE = "part-0.parquet"
TARGET_FILE_ROWS = 1_000_000  # rows per compacted file (about 100 MB of 480p masks): large, still one PUT
# Rows per row group: a few hundred short videos, each whole in one group. Statistics on the sorted video ids let
# a query engine read one group for one video; a group per video would make the footer itself the cost.
GROUP_ROWS = 8192
INDEX_GROUP_ROWS = 65_536  # videos per row group of the index: one video's lookup reads one

INDEX_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # the video's key (savos.io.schema.video_key)
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),  # relative to the output root
        pa.field("row_group", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),  # the video's first row within its row group
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("frames", pa.int32(), nullable=False),
        pa.field("objects", pa.int32(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("run_id", pa.string()),  # the job run that wrote the video (null: written outside one, or before)
    ]
)


@dataclass(frozen=True)
class VideoLocation:
    """Where a compacted video's rows are: a file (relative to the output root), its row group, and its rows'
    place in that group."""

    file: str
    row_group: int
    offset: int
    rows: int


@dataclass
class OutputIndex:
    """The index in force of a job output (empty when it was never compacted)."""

    generation: str | None
    videos: dict[str, VideoLocation]  # key -> location

    @property
    def files(self) -> list[str]:
        return sorted({v.file for v in self.videos.values()})


@dataclass(frozen=True)
class CompactionResult:
    generation: str | None
    videos_compacted: int  # new in this compaction
    videos_indexed: int  # in the index now
    files_written: int
    per_video_files_removed: int


def _resolve(output: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(output)
    return fs, root.rstrip("/")


def load_index(output: str) -> OutputIndex:
    """The index named by ``_compaction/CURRENT`` (an empty one when the output was never compacted)."""
    fs, root = _resolve(output)
    return _to_index(*_read_index(fs, root, columns=["key", "file", "row_group", "offset", "rows"]))


def compacted_keys(output: str) -> Iterator[str]:
    """The keys of the videos in the index in force (none when the output was never compacted), a chunk of the
    index at a time: what a resume needs, without the index's locations."""
    fs, root = _resolve(output)
    _, table = _read_index(fs, root, columns=["key"])
    for chunk in table.column("key").chunks:
        yield from chunk.to_pylist()


def _read_index(fs: fsspec.AbstractFileSystem, root: str, **read: Any) -> tuple[str | None, pa.Table]:
    """The generation in force and its index table (``read``: ``pq.read_table``'s columns or filters); no
    generation and no rows when the output was never compacted."""
    current = f"{root}/{CURRENT}"
    if not fs.exists(current):
        return None, INDEX_SCHEMA.empty_table()
    pointer = json.loads(fs.cat_file(current))
    with fs.open(f"{root}/{pointer['index']}", "rb") as f:
        return pointer["generation"], pq.read_table(f, **read)


def _to_index(generation: str | None, table: pa.Table) -> OutputIndex:
    columns = table.select(["key", "file", "row_group", "offset", "rows"]).to_pydict()
    videos = {
        key: VideoLocation(file, group, offset, rows)
        for key, file, group, offset, rows in zip(
            columns["key"], columns["file"], columns["row_group"], columns["offset"], columns["rows"], strict=True
        )
    }
    return OutputIndex(generation, videos)


def per_video_files(output: str) -> dict[str, str]:
    """``{key: path}`` of the per-video files under ``masks/`` (listed, not globbed: a prefix may hold ``[``)."""
    fs, root = _resolve(output)
    folder = f"{root}/masks"
    if not fs.isdir(folder):
        return {}
    found = {}
    for path in fs.find(folder):  # one listing (paged on S3), not a request per video
        parent = posixpath.dirname(path)
        if posixpath.basename(path) == PER_VIDEO_FILE and posixpath.dirname(parent) == folder:
            found[posixpath.basename(parent).removeprefix("video_id=")] = path
    return found


def dataset_paths(output: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The output's filesystem and every Parquet file holding its rows, each video's once: the compacted files of
    the index in force and the per-video files of videos not in it."""
    fs, root = _resolve(output)
    index = load_index(output)
    compacted = [f"{root}/{file}" for file in index.files]
    loose = [path for key, path in sorted(per_video_files(output).items()) if key not in index.videos]
    return fs, compacted + loose


def dataset_files(output: str) -> list[str]:
    """:func:`dataset_paths` as DuckDB, pyarrow and Ray Data take them: full URIs on object storage, plain paths
    on a local disk."""
    fs, paths = dataset_paths(output)
    return paths if isinstance(fs, LocalFileSystem) else [fs.unstrip_protocol(path) for path in paths]


def read_compacted(output: str, key: str) -> pa.Table | None:
    """The rows of one compacted video (one row group read, a few thousand rows), or None when it is not in the
    index."""
    fs, root = _resolve(output)
    # The index is sorted by key: its row groups' statistics skip all but one.
    found = _to_index(*_read_index(fs, root, filters=[("key", "==", key)])).videos
    if key not in found:
        return None
    where = found[key]
    with fs.open(f"{root}/{where.file}", "rb") as f:
        return pq.ParquetFile(f).read_row_group(where.row_group).slice(where.offset, where.rows)


def compact(output: str, target_rows: int = TARGET_FILE_ROWS, group_rows: int = GROUP_ROWS) -> CompactionResult:
    """Merge the per-video files of ``output`` into large files with an index (see the module's text)."""
    fs, root = _resolve(output)
    generation_in_force, previous_table = _read_index(fs, root)  # whole: the new index lists its videos again
    previous = _to_index(generation_in_force, previous_table)
    listed = per_video_files(output)
    already = {key: path for key, path in listed.items() if key in previous.videos}  # left by an interrupted run
    new = dict(sorted((key, path) for key, path in listed.items() if key not in previous.videos))
    _remove_orphans(fs, root, previous)
    if not new:
        removed = _remove(fs, already.values())
        return CompactionResult(previous.generation, 0, len(previous.videos), 0, removed)

    generation = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    rows = previous_table.to_pylist()  # their files stay as they are
    with tempfile.TemporaryDirectory(prefix="savos-compact-") as staging:
        files = _CompactedFiles(fs, root, generation, Path(staging), target_rows, group_rows)
        for key, path in new.items():
            with fs.open(path, "rb") as f:
                run_id = run_id_of(pq.ParquetFile(f).schema_arrow)
                f.seek(0)
                table = pq.read_table(f, schema=SCHEMA)
            rows.append(files.add(key, table.sort_by([("frame_idx", "ascending"), ("obj_id", "ascending")]), run_id))
        files.close()

    index_name = f"_compaction/index-{generation}.parquet"
    index = pa.Table.from_pylist(sorted(rows, key=lambda r: r["key"]), schema=INDEX_SCHEMA)
    _write_bytes(fs, f"{root}/{index_name}", _parquet_bytes(index))
    pointer = {"generation": generation, "index": index_name, "videos": index.num_rows, "time": time.time()}
    _write_bytes(fs, f"{root}/{CURRENT}", json.dumps(pointer, indent=2).encode())  # the swap
    removed = _remove(fs, [*already.values(), *new.values()])
    logger.info("compacted %d videos into %d files; %d in the index", len(new), files.count, index.num_rows)
    return CompactionResult(generation, len(new), index.num_rows, files.count, removed)


class _CompactedFiles:
    """The compacted files of one generation, staged locally and uploaded whole: videos are appended whole, in
    order; a row group is written once it holds ``group_rows`` rows, a file closed once it holds ``file_rows``."""

    def __init__(
        self, fs: fsspec.AbstractFileSystem, root: str, generation: str, staging: Path, file_rows: int, group_rows: int
    ) -> None:
        self.fs, self.root, self.generation, self.staging = fs, root, generation, staging
        self.file_rows, self.group_rows = file_rows, group_rows
        self.count = 0  # files begun
        self.writer: pq.ParquetWriter | None = None
        self.name, self.local = "", ""
        self.group, self.in_file = 0, 0  # the row group being filled, rows written to the file
        self.pending: list[pa.Table] = []  # the row group's videos
        self.pending_rows = 0

    def add(self, key: str, table: pa.Table, run_id: str | None) -> dict[str, Any]:
        """Append one video's rows; its index row."""
        if self.writer is None or self.in_file >= self.file_rows:
            self._new_file()
        row = _index_row(key, table, self.name, self.group, self.pending_rows, run_id)
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.group_rows:
            self._flush_group()
        return row

    def close(self) -> None:
        self._close_file()

    def _new_file(self) -> None:
        self._close_file()
        self.name = f"compacted/{self.generation}/part-{self.count:05d}.parquet"
        self.local = str(self.staging / f"part-{self.count:05d}.parquet")
        self.writer = pq.ParquetWriter(self.local, SCHEMA, compression="zstd")
        self.count, self.group, self.in_file = self.count + 1, 0, 0

    def _flush_group(self) -> None:
        if self.writer is None or not self.pending:
            return
        group = pa.concat_tables(self.pending)
        self.writer.write_table(group, row_group_size=max(1, group.num_rows))
        self.group, self.in_file = self.group + 1, self.in_file + group.num_rows
        self.pending, self.pending_rows = [], 0

    def _close_file(self) -> None:
        if self.writer is None:
            return
        self._flush_group()
        self.writer.close()
        self.writer = None
        _upload(self.fs, self.local, f"{self.root}/{self.name}")


def _index_row(key: str, table: pa.Table, file: str, group: int, offset: int, run_id: str | None) -> dict[str, Any]:
    columns = table.select(["video_id", "frame_idx", "obj_id", "model"]).to_pydict()
    return {
        "key": key,
        "video_id": columns["video_id"][0] if table.num_rows else "",
        "file": file,
        "row_group": group,
        "offset": offset,
        "rows": table.num_rows,
        "frames": len(set(columns["frame_idx"])),
        "objects": len(set(columns["obj_id"])),
        "model": columns["model"][0] if table.num_rows else "",
        "run_id": run_id,
    }


def _remove_orphans(fs: fsspec.AbstractFileSystem, root: str, index: OutputIndex) -> None:
    """Generations an interrupted compaction wrote but never swapped in: no reader refers to them."""
    keep = {posixpath.dirname(file) for file in index.files}
    folder = f"{root}/compacted"
    if fs.isdir(folder):
        for entry in fs.ls(folder, detail=False):
            if f"compacted/{posixpath.basename(entry.rstrip('/'))}" not in keep:
                logger.info("removing %s, left by an interrupted compaction", entry)
                fs.rm(entry, recursive=True)
    indexes = f"{root}/_compaction"
    if fs.isdir(indexes):
        current = f"_compaction/index-{index.generation}.parquet"
        for entry in fs.ls(indexes, detail=False):
            name = f"_compaction/{posixpath.basename(entry)}"
            if name.startswith("_compaction/index-") and name != current:
                fs.rm_file(entry)


def _remove(fs: fsspec.AbstractFileSystem, paths: Any) -> int:
    count = 0
    for path in paths:
        fs.rm_file(path)
        folder = posixpath.dirname(path)
        if isinstance(fs, LocalFileSystem) and not fs.ls(folder):
            fs.rmdir(folder)
        count += 1
    return count


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=INDEX_GROUP_ROWS)
    return bytes(sink.getvalue().to_pybytes())


def _write_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Whole or not at all: a rename on a local disk, one PUT on an object store."""
    if isinstance(fs, LocalFileSystem):
        write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))
    else:
        fs.pipe_file(path, data)


def _upload(fs: fsspec.AbstractFileSystem, local: str, path: str) -> None:
    if isinstance(fs, LocalFileSystem):
        write_atomically(path, lambda tmp: shutil.copyfile(local, tmp))
    else:
        fs.put_file(local, path)
