"""Frame sources: a folder of images or a video file, read lazily as ``(H, W, 3)`` uint8 RGB arrays."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from .errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """One frame as ``(H, W, 3)`` uint8 RGB. A truncated or non-image file raises :class:`InputError`."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated JPEG fails here, not later as grey pixels
            return np.array(image.convert("RGB"))
    except FileNotFoundError as err:
        raise InputError(path, "frame file not found") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(path, f"cannot decode image ({err})") from err


class NamedFrames:
    """Frames known by name: ``names[i]`` is frame i's name (its file stem)."""

    names: list[str]

    def frame_name(self, index: int) -> str:
        return self.names[index]

    def frame_index(self, name: str) -> int | None:
        try:
            return self.names.index(name)
        except ValueError:
            return None


class FrameFolder(NamedFrames):
    """Frames as image files in one folder, in file-name order; a frame's name is its file stem."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(self.folder, "not a folder of frames")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise InputError(self.folder, f"no frames ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
        self.names = [p.stem for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the first frame, read from its header only."""
        try:
            with Image.open(self.paths[0]) as image:
                return image.height, image.width
        except OSError as err:
            raise InputError(self.paths[0], f"cannot read image header ({err})") from err

    def __iter__(self) -> Iterator[np.ndarray]:
        first: tuple[int, ...] | None = None
        for path in self.paths:
            frame = read_image(path)
            first = first or frame.shape
            if frame.shape != first:
                raise InputError(
                    path, f"frame is {frame.shape[1]}x{frame.shape[0]}, the first frame {first[1]}x{first[0]}"
                )
            yield frame


class VideoFile:
    """Frames decoded from a video file with OpenCV; frame names are ``%05d`` of the index."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "video file not found")
        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened():
                raise InputError(self.path, "cannot open video (unknown container or codec)")
            self._size = (
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            )
        finally:
            capture.release()

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def frame_name(self, index: int) -> str:
        return f"{index:05d}"

    def frame_index(self, name: str) -> int | None:
        return int(name) if name.isdigit() else None

    def __iter__(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(self.path))
        count = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                count += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
        if count == 0:
            raise InputError(self.path, "video has no decodable frame")


class FrameSource(Protocol):
    """What propagation needs from frames: their size, names both ways, and the frames in order."""

    @property
    def size(self) -> tuple[int, int]: ...

    def frame_name(self, index: int) -> str: ...

    def frame_index(self, name: str) -> int | None: ...

    def __iter__(self) -> Iterator[np.ndarray]: ...


def open_frames(path: str | os.PathLike[str]) -> FrameSource:
    """A folder of images or a video file, chosen by what ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFile(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    raise InputError(path, f"not a frame folder or a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
