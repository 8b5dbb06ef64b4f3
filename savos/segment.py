"""Segment one video into a folder of palette PNGs: the work behind ``savos segment`` and the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import FrameSource, write_palette_png
from .data.annotations import object_masks
from .inference import Predictor, probs_to_ids


def segment_to_pngs(
    predictor: Predictor, frames: FrameSource, annotations: dict[int, np.ndarray], out_dir: Path
) -> int:
    """Propagate ``annotations`` (``{frame_idx: (H, W) ids}``) through ``frames``; write one DAVIS-palette PNG
    per frame, named after the frame. Returns the number of masks written."""
    state = predictor.init_state(frames)
    for frame_idx, ids in annotations.items():
        for obj_id, mask in object_masks(ids).items():
            predictor.add_mask(state, frame_idx, obj_id, mask)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for frame_idx, obj_ids, probs in predictor.propagate(state):
        write_palette_png(out_dir / f"{frames.frame_name(frame_idx)}.png", probs_to_ids(obj_ids, probs))
        written += 1
    return written
