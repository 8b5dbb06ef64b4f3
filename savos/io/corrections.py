"""People's corrections, back from an annotation tool, as sparse annotations the job propagates from.

A tool export holds every mask of a video, corrected or not. What a person changed is found by comparing it
with the pre-labels it was made from: each (frame, object) whose mask differs is a correction. Corrections are
kept in a store beside the corpus, in the corpus's own annotation layout (``STORE/<video>/<frame>.png``,
palette PNGs of object ids), so a rerun reads them like any sparse annotation: on its frame the corrected mask
wins, and the object is propagated from there. A mask a person deleted is kept as an absence
(``STORE/<video>/removed.json``: ``{frame name: [object ids]}``): on that frame the object has no pixels.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
from PIL import Image

from savos.data.errors import InputError
from savos.data.masks import read_mask, write_palette_png

from .exports import read_export
from .reader import VideoMasks
from .schema import video_key

logger = logging.getLogger(__name__)

FORMATS = ("cvat", "cvat-images", "labelstudio", "davis")
REMOVED_FILE = "removed.json"  # in a video's corrections folder: {frame name: [ids of objects removed there]}


def read_removals(data: bytes, source: str) -> dict[str, list[int]]:
    """``{frame name: [object ids]}`` from a video's ``removed.json``; :class:`InputError` naming it if malformed."""
    try:
        loaded = json.loads(data)
        return {str(name): [int(i) for i in ids] for name, ids in loaded.items()}
    except (ValueError, TypeError, AttributeError) as err:
        raise InputError(source, f"not a map of frame names to object ids ({err})") from err


@dataclass(frozen=True)
class Correction:
    """One object's corrected mask on one frame."""

    frame_idx: int
    frame_name: str
    obj_id: int
    mask: np.ndarray  # (H, W) bool; all False: the person removed the object from this frame

    @property
    def removal(self) -> bool:
        return not bool(self.mask.any())


def read_tool_masks(path: Path, fmt: str, video: VideoMasks, names: Mapping[int, str] | None = None) -> np.ndarray:
    """``(T, H, W)`` ids of a tool export of ``video`` (``davis``: a folder of PNGs of some of its frames)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.exists():
        raise InputError(path, "not found")
    if fmt != "davis":
        return read_export(path, fmt, names)[1]
    known = {name: t for t, name in enumerate(video.frame_names)}
    ids = video.ids.astype(np.int32)  # frames without a PNG are as labelled
    for png in sorted(path.glob("*.png")):
        if png.stem not in known:
            raise InputError(png, f"named after no frame of video {video.video_id!r}")
        ids[known[png.stem]] = _sized(read_mask(png, allow_empty=True), video, png)
    return ids


def find_corrections(video: VideoMasks, ids: np.ndarray, source: str | Path) -> list[Correction]:
    """The (frame, object) masks in ``ids`` (a tool's export, frames by position) that differ from ``video``'s.

    The export is checked first: its frames, frame size and objects must be the video's (:class:`InputError`
    naming ``source``)."""
    frames = len(video.frame_names)
    if len(ids) > frames:
        raise InputError(source, f"frame {frames} is outside video {video.video_id!r} (frames 0..{frames - 1})")
    if len(ids) < frames:
        raise InputError(source, f"{len(ids)} frames, but video {video.video_id!r} has {frames}")
    _sized(ids[0], video, source)
    unknown = sorted(set(np.unique(ids).tolist()) - {0, *video.obj_ids})
    if unknown:
        raise InputError(source, f"object ids {unknown} are not objects of video {video.video_id!r} ({video.obj_ids})")
    corrections = []
    for t in range(frames):
        for obj_id in video.obj_ids:
            fixed = ids[t] == obj_id
            if np.array_equal(fixed, video.ids[t] == obj_id):
                continue
            corrections.append(Correction(t, video.frame_names[t], obj_id, fixed))
    return corrections


def _sized(frame: np.ndarray, video: VideoMasks, source: str | Path) -> np.ndarray:
    height, width = video.ids.shape[1:]
    if frame.shape != (height, width):
        raise InputError(
            source, f"a mask of {frame.shape[1]}x{frame.shape[0]}, but video {video.video_id!r} is {width}x{height}"
        )
    return frame


def corrections_folder(store: str, video_id: str) -> str:
    """The URI of ``video_id``'s corrections in the store ``store``: an annotation folder, as a corpus has."""
    return f"{store.rstrip('/')}/{video_key(video_id)}"


def corrections_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """A digest of one video's corrections: its files' names (within the video's folder) and bytes. Recorded
    with the masks labelled from them (:func:`savos.io.schema.schema_of_run`), so a rerun can tell the videos
    whose corrections are new from those labelled with these very corrections before."""
    digest = hashlib.sha256()
    for name, data in sorted(files):
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:32]


class CorrectionStore:
    """Corrections under ``uri``: ``<video key>/<frame name>.png`` per corrected frame, the corrected objects' ids."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.uri)

    def folder(self, video_id: str) -> str:
        """The URI of ``video_id``'s corrections: an annotation folder, as a corpus has."""
        return corrections_folder(self.uri, video_id)

    def add(self, video_id: str, corrections: Iterable[Correction]) -> list[str]:
        """Merge ``corrections`` into the store (a frame's earlier corrections of other objects are kept; a
        later one of the same object, mask or removal, replaces the earlier); returns the files written. Every
        file is composed before the first write."""
        by_frame: dict[str, list[Correction]] = {}
        for correction in corrections:
            by_frame.setdefault(correction.frame_name, []).append(correction)
        folder = posixpath.join(self.root, video_key(video_id))
        removed_path = posixpath.join(folder, REMOVED_FILE)
        removed = self._read_removed(removed_path)
        frames = {}
        for name, fixes in by_frame.items():
            path = posixpath.join(folder, f"{name}.png")
            ids = self._read(path, fixes[0].mask.shape)
            gone = set(removed.get(name, []))
            for fix in fixes:
                ids[ids == fix.obj_id] = 0
                ids[fix.mask] = fix.obj_id
                gone = gone | {fix.obj_id} if fix.removal else gone - {fix.obj_id}
            removed[name] = sorted(gone)
            frames[path] = ids
        written = []
        for path, ids in frames.items():
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            if ids.any():
                buffer = io.BytesIO()
                write_palette_png(buffer, ids)
                self.fs.pipe_file(path, buffer.getvalue())
                written.append(path)
            elif self.fs.exists(path):  # every object of the frame removed: no annotation left there
                self.fs.rm_file(path)
        removed = {name: ids for name, ids in sorted(removed.items()) if ids}
        if removed or self.fs.exists(removed_path):
            self.fs.pipe_file(removed_path, json.dumps(removed, indent=1).encode())
            written.append(removed_path)
        return [self.fs.unstrip_protocol(path) for path in written]

    def _read_removed(self, path: str) -> dict[str, list[int]]:
        if not self.fs.exists(path):
            return {}
        return {str(k): [int(i) for i in v] for k, v in json.loads(self.fs.cat_file(path)).items()}

    def _read(self, path: str, shape: tuple[int, ...]) -> np.ndarray:
        if not self.fs.exists(path):
            return np.zeros(shape, np.uint8)
        with self.fs.open(path, "rb") as f, Image.open(f) as image:
            return np.asarray(image).copy()
