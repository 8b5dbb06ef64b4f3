"""First-frame or sparse annotations for one video: which frame carries which object ids."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputError
from .frames import FrameSource
from .masks import read_mask


def first_frame_annotation(mask_path: str | os.PathLike[str], frames: FrameSource) -> dict[int, np.ndarray]:
    """``{0: ids}`` from one mask file for the first frame."""
    return {0: read_mask(mask_path, frames.size)}


def sparse_annotations(masks_dir: str | os.PathLike[str], frames: FrameSource) -> dict[int, np.ndarray]:
    """``{frame_idx: ids}`` from PNG masks named after the frames they annotate (any frames, any number)."""
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise InputError(masks_dir, "masks folder not found")
    annotations: dict[int, np.ndarray] = {}
    for path in sorted(p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"):
        frame_idx = frames.frame_index(path.stem)
        if frame_idx is None:
            raise InputError(path, f"mask is named after no frame of the input (no frame '{path.stem}')")
        annotations[frame_idx] = read_mask(path, frames.size)
    if not annotations:
        raise InputError(masks_dir, "no .png masks in the folder")
    return annotations


def object_masks(ids: np.ndarray) -> dict[int, np.ndarray]:
    """``{obj_id: (H, W) bool}`` for every non-zero id of a label map."""
    return {int(obj_id): ids == obj_id for obj_id in np.unique(ids) if obj_id != 0}
