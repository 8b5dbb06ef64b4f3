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

import csv
import itertools
import json
import logging
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from savos.data.errors import InputError
from savos.data.frames import VIDEO_SUFFIXES

from .redact import log_text, redact
from .retry import RetryPolicy, is_transient
from .storage import Storage

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class RefusedRow:
    """A manifest row that names no usable video: its 1-based number, its id if it has one, and why."""

    manifest: str
    row: int
    video_id: str | None
    problem: str

    def __str__(self) -> str:
        return f"{self.manifest}: row {self.row}: {self.problem}"


OnSkip = Callable[[str, str], None]  # (entry URI, why): an entry of the input that is not a video
OnRefused = Callable[[RefusedRow], None]


def _refuse(row: RefusedRow) -> None:
    raise InputError(row.manifest, f"row {row.row}: {row.problem}")


def discover(
    uri: str,
    layout: str = "auto",
    *,
    retry: RetryPolicy | None = None,
    allow_schemes: Sequence[str] = (),
    on_skip: OnSkip | None = None,
    on_refused: OnRefused = _refuse,
) -> Iterator[VideoTask]:
    """The videos under ``uri`` in name order (``layout``: one of :data:`LAYOUTS`).

    Entries that are not videos (stray files, links to nowhere) go to ``on_skip``; a manifest row that names no
    usable video goes to ``on_refused`` (by default an :class:`InputError`), and the rows after it are read on.
    Manifest URIs may use the manifest's own scheme and ``allow_schemes``; relative ones are read from the
    manifest's folder. Storage calls go through ``retry`` (by default :class:`~savos_job.retry.RetryPolicy`'s).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    storage, root = Storage.open(uri, retry or RetryPolicy())
    skip = on_skip or _log_skip
    if layout == "manifest" or (layout == "auto" and root.lower().endswith(MANIFEST_SUFFIXES)):
        if not storage.exists(root):
            raise InputError(uri, "manifest not found")
        return _manifest(uri, storage, root, allow_schemes, on_refused)
    if not storage.isdir(root):
        raise InputError(uri, "corpus folder not found")
    if layout == "davis" or (layout == "auto" and storage.isdir(storage.join(root, "JPEGImages"))):
        return _davis(storage, root, skip)
    return _videos(storage, root, skip)


def _log_skip(entry: str, why: str) -> None:
    logger.warning("skipped %s: %s", log_text(entry), why)


def _layout_dir(storage: Storage, root: str, kind: str) -> str:
    davis = storage.join(root, kind, "480p")
    return davis if storage.isdir(davis) else storage.join(root, kind)


def _davis(storage: Storage, root: str, skip: OnSkip) -> Iterator[VideoTask]:
    frames_root, masks_root = _layout_dir(storage, root, "JPEGImages"), _layout_dir(storage, root, "Annotations")
    if frames_root != storage.join(root, "JPEGImages"):  # videos beside 480p/ are not read: say so
        for path, _ in storage.iter_dir(storage.join(root, "JPEGImages")):
            if posixpath.basename(path) != "480p":
                skip(storage.uri(path), "beside JPEGImages/480p/, which is the layout's frames folder")
    for path, kind in storage.iter_dir(frames_root):
        if kind != "directory":
            skip(storage.uri(path), _not_a_video(kind, "a folder of frames"))
            continue
        video_id = posixpath.basename(path)
        yield VideoTask(video_id, storage.uri(path), storage.uri(storage.join(masks_root, video_id)))


def _videos(storage: Storage, root: str, skip: OnSkip) -> Iterator[VideoTask]:
    found = False
    for path, kind in storage.iter_dir(root):
        stem, suffix = posixpath.splitext(posixpath.basename(path))
        if kind == "directory" or (kind == "file" and suffix.lower() == ".png"):
            continue  # a video's masks: its worker finds them
        if kind != "file" or suffix.lower() not in VIDEO_SUFFIXES:
            skip(storage.uri(path), _not_a_video(kind, f"a video file ({', '.join(sorted(VIDEO_SUFFIXES))})"))
            continue
        found = True
        # ROOT/<stem>/ (masks named after frames) or ROOT/<stem>.png: the worker looks, so the driver lists once.
        yield VideoTask(stem, storage.uri(path), storage.uri(storage.join(root, stem)))
    if not found:
        raise InputError(storage.uri(root), "no videos: neither JPEGImages/ (DAVIS layout) nor video files")


def _not_a_video(kind: str, expected: str) -> str:
    return f"not {expected}" if kind in ("file", "directory") else f"not a file or folder ({kind}: a broken link?)"


def _manifest(
    uri: str, storage: Storage, path: str, allow_schemes: Sequence[str], on_refused: OnRefused
) -> Iterator[VideoTask]:
    """The manifest's tasks; its first row is read now, so that a manifest that cannot be read or lists nothing
    is an error before anything starts."""
    allowed = {*_schemes(storage), *(s.lower() for s in allow_schemes)}
    rows = _manifest_rows(uri, storage, path)
    first = next(rows, None)
    if first is None:
        raise InputError(uri, "the manifest lists no videos")

    def tasks() -> Iterator[VideoTask]:
        for number, row in enumerate(itertools.chain([first], rows), start=1):
            task = row if isinstance(row, str) else _task(storage, path, row, allowed)
            if isinstance(task, VideoTask):
                yield task
            else:
                video_id = _text(row, "video_id") if isinstance(row, dict) else None
                on_refused(RefusedRow(uri, number, video_id, task))

    return tasks()


def _task(storage: Storage, path: str, row: dict[str, Any], allowed: set[str]) -> VideoTask | str:
    """The row's task, or what is wrong with it."""
    video_id, masks = _text(row, "video_id"), _text(row, "masks")
    source = _text(row, "frames") or _text(row, "video")
    missing = [
        name for name, value in (("video_id", video_id), ("frames or video", source), ("masks", masks)) if not value
    ]
    if missing or video_id is None or source is None or masks is None:
        return f"needs {', '.join(missing)} (columns video_id, frames or video, and masks)"
    located = []
    for value in (source, masks):
        uri = _locate(storage, path, value)
        scheme = _scheme(uri)
        if scheme not in allowed:
            return f"{redact(value)}: the scheme {scheme}:// is not allowed here (--allow-schemes {scheme} allows it)"
        located.append(uri)
    return VideoTask(video_id, located[0], located[1])


def _text(row: dict[str, Any], column: str) -> str | None:
    """A cell as the text it was written as; None when absent or blank (``0`` is an id like any other)."""
    value = row.get(column)
    if value is None:
        return None
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    return text if text.strip() else None


def _locate(storage: Storage, manifest_path: str, value: str) -> str:
    """A URI from a manifest cell: a relative path is read from the manifest's folder."""
    if _SCHEME.match(value) or posixpath.isabs(value):
        return value
    return storage.uri(posixpath.normpath(posixpath.join(posixpath.dirname(manifest_path), value)))


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _scheme(uri: str) -> str:
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else "file"


def _schemes(storage: Storage) -> tuple[str, ...]:
    protocol = storage.fs.protocol
    return tuple(protocol) if isinstance(protocol, tuple | list) else (protocol,)


def _manifest_rows(uri: str, storage: Storage, path: str) -> Iterator[dict[str, Any] | str]:
    """Rows of a manifest, streamed (Parquet by row group, CSV and JSONL by line), every cell as written (text in
    a CSV: ``00042`` stays ``00042``); a line that is no row is its problem as a string. Read on where it broke
    off when storage fails for a moment."""
    try:
        yield from storage.retry.resumable(lambda: _read_manifest(storage, path), f"read {uri}")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, InputError) or is_transient(err):
            raise
        raise InputError(uri, f"cannot read the manifest ({type(err).__name__}: {err})") from err


def _read_manifest(storage: Storage, path: str) -> Iterator[dict[str, Any] | str]:
    fs = storage.fs
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".jsonl":
        with fs.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield _json_row(line)
    elif suffix == ".csv":
        with fs.open(path, "rt", encoding="utf-8", newline="") as f:
            yield from csv.DictReader(f)
    else:
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches():
                yield from batch.to_pylist()


def _json_row(line: str) -> dict[str, Any] | str:
    try:
        row = json.loads(line)
    except ValueError as err:
        return f"not valid JSON ({err})"
    return row if isinstance(row, dict) else f"a JSON {type(row).__name__}, not an object with the row's columns"
