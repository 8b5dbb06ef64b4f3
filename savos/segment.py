"""Segment videos into folders of palette PNGs: the work behind ``savos segment``, ``savos predict`` and the demo."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .data import FrameFolder, FrameSource, write_palette_png
from .data.annotations import first_frame_annotation, object_masks
from .data.vos import Sequence
from .eval.baselines import run_baseline
from .inference import Predictor, probs_to_ids

OnFrame = Callable[[], object]  # called once a frame's mask is written (an entry point's progress bar)


def segment_to_pngs(
    predictor: Predictor,
    frames: FrameSource,
    annotations: dict[int, np.ndarray],
    out_dir: Path,
    on_frame: OnFrame | None = None,
    backward: bool = False,
) -> int:
    """Propagate ``annotations`` (``{frame_idx: (H, W) ids}``) through ``frames``; write one DAVIS-palette PNG
    per frame, named after the frame. Returns the number of masks written. ``backward``: also propagate
    backwards from annotations after frame 0 (:meth:`~savos.inference.Predictor.propagate_backward`)."""
    state = predictor.init_state(frames)
    for frame_idx, ids in annotations.items():
        for obj_id, mask in object_masks(ids).items():
            predictor.add_mask(state, frame_idx, obj_id, mask)
    if backward:
        predictor.propagate_backward(state)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for frame_idx, obj_ids, probs in predictor.propagate(state):
        write_palette_png(out_dir / f"{frames.frame_name(frame_idx)}.png", probs_to_ids(obj_ids, probs))
        written += 1
        if on_frame is not None:
            on_frame()
    return written


def segment_sequences(
    predictor: Predictor, sequences: Iterable[Sequence], out_dir: Path, on_frame: OnFrame | None = None
) -> int:
    """``out_dir/<seq>/<frame>.png`` for each dataset sequence, propagated from its first frame's mask."""
    written = 0
    for seq in sequences:
        frames = FrameFolder(seq.frames[0].parent)
        annotation = first_frame_annotation(seq.masks[seq.frames[0].stem], frames)
        written += segment_to_pngs(predictor, frames, annotation, out_dir / seq.name, on_frame)
    return written


def baseline_sequences(name: str, sequences: Iterable[Sequence], out_dir: Path) -> int:
    """Like :func:`segment_sequences`, with a baseline of :mod:`savos.eval.baselines` instead of a model."""
    written = 0
    for seq in sequences:
        frames = FrameFolder(seq.frames[0].parent)
        first = first_frame_annotation(seq.masks[seq.frames[0].stem], frames)[0]
        (out_dir / seq.name).mkdir(parents=True, exist_ok=True)
        for frame_idx, ids in enumerate(run_baseline(name, frames, first)):
            write_palette_png(out_dir / seq.name / f"{frames.frame_name(frame_idx)}.png", ids)
            written += 1
    return written
