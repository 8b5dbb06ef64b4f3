"""Annotated video datasets on disk: DAVIS-2016/2017 and YouTube-VOS layouts.

DAVIS: ``ROOT/JPEGImages/480p/<seq>/<frame>.jpg`` and ``ROOT/Annotations/480p/<seq>/<frame>.png`` (every frame
annotated; 2016 masks are binary 0/255, 2017 masks are palette ids). YouTube-VOS: the same without ``480p``
(``train/JPEGImages/<seq>/``, ``train/Annotations/<seq>/``), where only every fifth frame is annotated. A frame
without a mask file simply has no ground truth.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import InputError
from .frames import IMAGE_SUFFIXES, read_image
from .masks import read_mask, write_palette_png

# The development split of ../shared/data/davis2016-train: held out from training, used for dev J&F.
DAVIS2016_DEV = ("bear", "dog-agility", "flamingo", "kite-walk", "swing")


class AnnotatedVideo(Protocol):
    """What training reads of a video: its frames and the ground truth of its annotated ones."""

    @property
    def name(self) -> str: ...

    def __len__(self) -> int: ...

    @property
    def annotated(self) -> list[int]: ...

    def image(self, frame_idx: int) -> np.ndarray: ...

    def labels(self, frame_idx: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Sequence:
    """One annotated video: frame files in order, and the mask file of each annotated frame (by frame name)."""

    name: str
    frames: tuple[Path, ...]
    masks: dict[str, Path]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def annotated(self) -> list[int]:
        """Indices of the frames that have a mask, in order."""
        return [i for i, path in enumerate(self.frames) if path.stem in self.masks]

    def image(self, frame_idx: int) -> np.ndarray:
        """Frame ``(H, W, 3)`` uint8 RGB."""
        return read_image(self.frames[frame_idx])

    def labels(self, frame_idx: int) -> np.ndarray:
        """Object ids ``(H, W)`` uint8 of an annotated frame (may be all background)."""
        name = self.frames[frame_idx].stem
        if name not in self.masks:
            raise InputError(self.frames[frame_idx], "frame has no ground-truth mask")
        return read_mask(self.masks[name], allow_empty=True)


def _layout_dir(root: Path, kind: str) -> Path:
    """``ROOT/<kind>/480p`` where it exists (DAVIS), else ``ROOT/<kind>`` (YouTube-VOS)."""
    davis = root / kind / "480p"
    return davis if davis.is_dir() else root / kind


def annotation_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding one mask folder per sequence under a dataset root."""
    return _layout_dir(Path(root), "Annotations")


def load_sequences(root: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[Sequence]:
    """Every sequence of a DAVIS or YouTube-VOS root (or only ``names``, in that order)."""
    root = Path(root)
    image_root, mask_root = _layout_dir(root, "JPEGImages"), annotation_dir(root)
    if not image_root.is_dir() or not mask_root.is_dir():
        raise InputError(root, "not a DAVIS or YouTube-VOS root (expected JPEGImages/ and Annotations/)")
    wanted = sorted(p.name for p in image_root.iterdir() if p.is_dir()) if names is None else list(names)
    sequences = []
    for name in wanted:
        frame_dir = image_root / name
        if not frame_dir.is_dir():
            raise InputError(frame_dir, f"sequence {name!r} not found")
        frames = tuple(sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        masks = {p.stem: p for p in sorted((mask_root / name).glob("*.png"))}
        if not frames or not masks:
            raise InputError(frame_dir, "sequence has no frames or no masks")
        sequences.append(Sequence(name, frames, masks))
    return sequences


def split_sequences(
    sequences: list[Sequence], held_out: Iterable[str] = DAVIS2016_DEV
) -> tuple[list[Sequence], list[Sequence]]:
    """``(train, dev)``: the sequences named in ``held_out`` form the dev split."""
    held_out = set(held_out)
    missing = held_out - {s.name for s in sequences}
    if missing:
        raise ValueError(f"dev sequences not in the dataset: {', '.join(sorted(missing))}")
    return [s for s in sequences if s.name not in held_out], [s for s in sequences if s.name in held_out]


def write_first_frame_copy(root: Path, sequences: Iterable[Sequence]) -> None:
    """``sequences`` as a corpus to pre-label under ``root`` (``JPEGImages/<seq>/``, ``Annotations/<seq>/``): links
    to their frames and each first frame's mask only, the rest of their ground truth left out."""
    for seq in sequences:
        frames_dir, masks_dir = root / "JPEGImages" / seq.name, root / "Annotations" / seq.name
        frames_dir.mkdir(parents=True)
        masks_dir.mkdir(parents=True)
        for frame in seq.frames:
            (frames_dir / frame.name).symlink_to(frame.resolve())
        write_palette_png(masks_dir / f"{seq.frames[0].stem}.png", seq.labels(0))
