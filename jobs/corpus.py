"""Find the videos of a corpus: one :class:`VideoTask` per video, yielded as the listing goes.

Layouts (``layout="auto"`` tries them in this order):

- ``davis``: ``ROOT/JPEGImages[/480p]/<video>/*.jpg`` with ``ROOT/Annotations[/480p]/<video>/*.png`` (DAVIS and
  YouTube-VOS; first-frame or sparse masks named after their frames).
- ``videos``: ``ROOT/<video>.mp4`` (any video suffix) with its masks in ``ROOT/<video>/*.png`` or a single
  first-frame mask ``ROOT/<video>.png`` (the task names ``ROOT/<video>``; the worker finds which).
- ``manifest``: a Parquet, CSV or JSONL file with columns ``video_id``, ``frames`` (a folder URI) or ``video``
  (a file URI), and ``masks`` (a folder URI, or one mask file URI for the first frame).

A task names folders and files; the worker lists a video's frames itself, so the driver holds one line per
video, never per frame.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import fsspec

from savos.data.errors import InputError
from savos.data.frames import VIDEO_SUFFIXES

from .storage import isdir, iter_dir, join, resolve, resumable, unstrip

LAYOUTS = ("auto", "davis", "videos", "manifest")
MANIFEST_SUFFIXES = (".parquet", ".csv", ".jsonl")


@dataclass(frozen=True)
class VideoTask:
    """One video to label. ``source`` is a frame folder or a video file URI; ``masks`` a folder of PNGs named
    after frames, or one PNG for the first frame (``X`` with no such folder means ``X.png``)."""

    video_id: str
    source: str
    masks: str

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VideoTask:
        return cls(str(row["video_id"]), str(row["source"]), str(row["masks"]))

    def to_json(self) -> str:
        """ASCII JSON: survives Arrow even when a local file name is not UTF-8 (``surrogateescape``)."""
        return json.dumps(self.to_row())

    @classmethod
    def from_json(cls, text: str) -> VideoTask:
        return cls.from_row(json.loads(text))


def discover(uri: str, layout: str = "auto") -> Iterator[VideoTask]:
    """The videos under ``uri`` in name order (``layout``: one of :data:`LAYOUTS`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    fs, root = resolve(uri)
    if layout == "manifest" or (layout == "auto" and root.endswith(MANIFEST_SUFFIXES)):
        return _manifest(uri)
    if not isdir(fs, root):
        raise InputError(uri, "corpus folder not found")
    if layout == "davis" or (layout == "auto" and isdir(fs, join(fs, root, "JPEGImages"))):
        return _davis(fs, root)
    return _videos(fs, root)


def _layout_dir(fs: fsspec.AbstractFileSystem, root: str, kind: str) -> str:
    davis = join(fs, root, kind, "480p")
    return davis if isdir(fs, davis) else join(fs, root, kind)


def _davis(fs: fsspec.AbstractFileSystem, root: str) -> Iterator[VideoTask]:
    frames_root, masks_root = _layout_dir(fs, root, "JPEGImages"), _layout_dir(fs, root, "Annotations")
    for path, is_dir in iter_dir(fs, frames_root):
        if is_dir:
            video_id = posixpath.basename(path)
            yield VideoTask(video_id, unstrip(fs, path), unstrip(fs, join(fs, masks_root, video_id)))


def _videos(fs: fsspec.AbstractFileSystem, root: str) -> Iterator[VideoTask]:
    found = False
    for path, is_dir in iter_dir(fs, root):
        stem, suffix = posixpath.splitext(posixpath.basename(path))
        if is_dir or suffix.lower() not in VIDEO_SUFFIXES:
            continue
        found = True
        # ROOT/<stem>/ (masks named after frames) or ROOT/<stem>.png: the worker looks, so the driver lists once.
        yield VideoTask(stem, unstrip(fs, path), unstrip(fs, join(fs, root, stem)))
    if not found:
        raise InputError(unstrip(fs, root), "no videos: neither JPEGImages/ (DAVIS layout) nor video files")


def _manifest(uri: str) -> Iterator[VideoTask]:
    for n, row in enumerate(_manifest_rows(uri), start=1):
        source = row.get("frames") or row.get("video")
        if not row.get("video_id") or not source or not row.get("masks"):
            raise InputError(uri, f"manifest row {n} needs video_id, frames or video, and masks: {row}")
        yield VideoTask(str(row["video_id"]), str(source), str(row["masks"]))


def _manifest_rows(uri: str) -> Iterator[dict[str, Any]]:
    """Rows of a manifest, streamed (Parquet by row group, CSV in blocks, JSONL by line); read on where it broke off
    when storage fails for a moment."""
    fs, path = resolve(uri)
    if not path.endswith(MANIFEST_SUFFIXES):
        raise InputError(uri, f"manifest must end in one of {', '.join(MANIFEST_SUFFIXES)}")
    yield from resumable(lambda: _read_manifest(fs, path), f"read {uri}")


def _read_manifest(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[dict[str, Any]]:
    if path.endswith(".jsonl"):
        with fs.open(path, "rt") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    elif path.endswith(".csv"):
        import pyarrow.csv as pacsv

        with fs.open(path, "rb") as f:
            for batch in pacsv.open_csv(f):
                yield from batch.to_pylist()
    else:
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches():
                yield from batch.to_pylist()
