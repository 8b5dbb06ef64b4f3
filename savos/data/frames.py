"""Frame sources: a folder of images or a video file, read lazily as ``(H, W, 3)`` uint8 RGB arrays."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps

from .errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


# EXIF orientations that turn the picture by 90 degrees (width and height swap).
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
_DIGITS = re.compile(r"(\d+)")
T = TypeVar("T")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """One frame as ``(H, W, 3)`` uint8 RGB. A truncated or non-image file raises :class:`InputError`."""
    try:
        with Image.open(path) as image:
            return decode_image(image)
    except FileNotFoundError as err:
        raise InputError(path, "frame file not found") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(path, f"cannot decode image ({err})") from err


def decode_image(image: Image.Image) -> np.ndarray:
    """An opened image as ``(H, W, 3)`` uint8 RGB, as a viewer shows it: turned by its EXIF orientation (as
    annotation tools show it to the people who draw the masks), 16-bit and float grey scaled to 8 bits (not
    clipped to white)."""
    image.load()  # decode now: a truncated JPEG fails here, not later as grey pixels
    image = ImageOps.exif_transpose(image)
    if image.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        values = np.asarray(image, dtype=np.float64)
        peak = values.max(initial=0.0)
        if image.mode.startswith("I;16") or peak > 255:
            values = values / 257.0  # 0..65535 -> 0..255
        elif image.mode == "F" and peak <= 1.0:
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.array(image.convert("RGB"))


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """``(H, W)`` of an opened image as :func:`decode_image` returns it, from its header only."""
    turned = image.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSING_ORIENTATIONS
    return (image.width, image.height) if turned else (image.height, image.width)


def frame_order(files: Iterable[T], name: Callable[[T], str]) -> list[T]:
    """``files`` in frame order of their ``name``: digits compared as numbers (``2.jpg`` before ``10.jpg``), the
    rest as text."""
    return sorted(files, key=lambda f: [(0, int(t), t) if t.isdigit() else (1, 0, t) for t in _DIGITS.split(name(f))])


def unique_stems(folder: str | os.PathLike[str], names: list[str]) -> list[str]:
    """The names' stems, which name the frames; two files of one stem (``00000.jpg`` and ``00000.png``) are an
    error, as a mask could not say which it belongs to."""
    stems = [os.path.splitext(name)[0] for name in names]
    seen: dict[str, str] = {}
    for stem, name in zip(stems, names, strict=True):
        if stem in seen:
            raise InputError(folder, f"two frames named {stem!r}: {seen[stem]} and {name}; keep one")
        seen[stem] = name
    return stems


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
        images = [p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        for path in images:
            if not path.is_file():  # reading a FIFO would wait for ever
                raise InputError(path, "not a regular file (a FIFO, socket or broken link)")
        self.paths = frame_order(images, lambda p: p.name)
        if not self.paths:
            raise InputError(self.folder, f"no frames ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
        self.names = unique_stems(self.folder, [p.name for p in self.paths])

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the first frame, read from its header only."""
        try:
            with Image.open(self.paths[0]) as image:
                return displayed_size(image)
        except (OSError, Image.DecompressionBombError) as err:
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
