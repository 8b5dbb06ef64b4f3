"""A video's frames and masks where they are stored: streamed from object storage, or staged on local disk.

Frames of a folder are fetched one by one as propagation asks for them (the engine reads a few ahead, so the
download of the next frame overlaps the network's work on this one). A video file and the masks are small
enough, and OpenCV and PIL want paths, so they are copied to a temporary folder first.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from savos.data.annotations import first_frame_annotation, sparse_annotations
from savos.data.errors import InputError
from savos.data.frames import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    FrameFolder,
    FrameSource,
    NamedFrames,
    VideoFile,
    decode_image,
    frame_order,
    unique_stems,
)

from .corpus import VideoTask
from .retry import RetryPolicy
from .storage import Storage


class RemoteFrameFolder(NamedFrames):
    """Image files in one object-storage folder, in name order, decoded as they are read."""

    def __init__(self, storage: Storage, folder: str, uri: str) -> None:
        self.storage, self.uri = storage, uri
        listing = storage.ls(folder)
        images = [p for p in listing if posixpath.splitext(p)[1].lower() in IMAGE_SUFFIXES]
        self.paths = frame_order(images, posixpath.basename)
        if not self.paths:
            raise InputError(uri, "no frames in the folder")
        self.names = unique_stems(uri, [posixpath.basename(p) for p in self.paths])
        self._first: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def size(self) -> tuple[int, int]:
        if self._first is None:
            self._first = self._read(0)
        return int(self._first.shape[0]), int(self._first.shape[1])

    def _read(self, index: int) -> np.ndarray:
        path = self.paths[index]
        data = self.storage.read(path)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return decode_image(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise InputError(self.storage.uri(path), f"cannot decode image ({err})") from err

    def __iter__(self) -> Iterator[np.ndarray]:
        height, width = self.size
        for index in range(len(self.paths)):
            frame = self._first if index == 0 and self._first is not None else self._read(index)
            if frame.shape[:2] != (height, width):
                raise InputError(
                    self.storage.uri(self.paths[index]),
                    f"frame is {frame.shape[1]}x{frame.shape[0]}, the first frame {width}x{height}",
                )
            yield frame


def open_video(task: VideoTask, staging: Path, retry: RetryPolicy) -> FrameSource:
    """The task's frames: a local folder or file as is; remote folders streamed; remote video files staged."""
    storage, path = Storage.open(task.source, retry)
    is_file = posixpath.splitext(path)[1].lower() in VIDEO_SUFFIXES
    if storage.is_local:
        return VideoFile(path) if is_file else FrameFolder(path)
    if is_file:
        local = staging / f"video{posixpath.splitext(path)[1]}"
        _download(storage, path, local, task.source)
        return VideoFile(local)
    return RemoteFrameFolder(storage, path, task.source)


def load_annotations(task: VideoTask, frames: FrameSource, staging: Path, retry: RetryPolicy) -> dict[int, np.ndarray]:
    """``{frame_idx: ids}``: one first-frame mask file, or a folder of masks named after their frames."""
    storage, path = Storage.open(task.masks, retry)
    uri = task.masks
    if not path.lower().endswith(".png") and not storage.isdir(path):
        # ROOT/<video> with no such folder: ROOT/<video>.png (or .PNG)
        found = next((f"{path}{suffix}" for suffix in (".png", ".PNG") if storage.exists(f"{path}{suffix}")), None)
        if found is None:
            raise InputError(uri, "no masks: neither a folder of masks named so nor a first-frame mask .png beside it")
        path, uri = found, f"{uri.rstrip('/')}{found[len(path) :]}"
    if storage.is_local:
        return (
            first_frame_annotation(path, frames) if path.lower().endswith(".png") else sparse_annotations(path, frames)
        )
    if path.lower().endswith(".png"):
        local = staging / "first-frame.png"
        _download(storage, path, local, uri)
        try:
            return first_frame_annotation(local, frames)
        except InputError as err:  # name the stored file, not our temporary copy
            raise InputError(uri, err.problem) from err
    masks = [p for p, kind in storage.iter_dir(path) if kind == "file" and p.lower().endswith(".png")]
    if not masks:
        raise InputError(uri, "no .png masks for this video")
    folder = staging / "masks"
    folder.mkdir()
    for remote in masks:
        _download(storage, remote, folder / posixpath.basename(remote), storage.uri(remote))
    try:
        return sparse_annotations(folder, frames)
    except InputError as err:
        raise InputError(f"{uri.rstrip('/')}/{Path(err.path).name}", err.problem) from err


def _download(storage: Storage, path: str, local: Path, uri: str) -> None:
    if not storage.exists(path):
        raise InputError(uri, "file not found")
    local.write_bytes(storage.read(path))
