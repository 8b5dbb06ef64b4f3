"""Helpers for job tests: what the job wrote, and what the engine gives when run directly on the same video."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.dataset as pads
import torch

from savos.checkpoint import load_checkpoint
from savos.data import open_frames
from savos.inference import Predictor, probs_to_ids
from savos.io.schema import decode_row
from savos.quality import DEFAULT_QUALITY, Quality, quality_preset


def read_masks(output: str) -> dict[str, dict[int, np.ndarray]]:
    """``{video_id: {frame_idx: (H, W) ids}}`` for every video under ``OUTPUT/masks``, read with pyarrow's
    dataset reader (as a data tool would) and decoded with pycocotools; no two objects may share a pixel."""
    fs, root = fsspec.core.url_to_fs(output)
    table = pads.dataset(f"{root}/masks", filesystem=fs, format="parquet").to_table()  # the README's recipe
    videos: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for row in table.to_pylist():
        mask = decode_row(row["rle_counts"], row["height"], row["width"])
        frame = videos[row["video_id"]].setdefault(row["frame_idx"], np.zeros(mask.shape, np.uint8))
        assert not frame[mask].any(), f"{row['video_id']} frame {row['frame_idx']}: objects overlap"
        frame[mask] = row["obj_id"]
    return dict(videos)


def engine_masks(
    checkpoint: Path, source: Path, first_ids: np.ndarray, quality: Quality | None = None
) -> dict[int, np.ndarray]:
    """The engine run directly (no Ray, no storage) from the first-frame ids, with ``quality`` (default: the job's
    default preset): ``{frame_idx: ids}``.

    On one thread, as the job's one-CPU actors run (Ray sets their OMP_NUM_THREADS): the same float sums in the
    same order, so the masks must match bit for bit, even many frames into a recurrent video.
    """
    model, _ = load_checkpoint(checkpoint)
    predictor = Predictor(model, device="cpu", quality=quality or quality_preset(DEFAULT_QUALITY))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        state = predictor.init_state(open_frames(source))
        for obj_id in np.unique(first_ids[first_ids > 0]):
            predictor.add_mask(state, 0, int(obj_id), first_ids == obj_id)
        return {t: probs_to_ids(obj_ids, probs) for t, obj_ids, probs in predictor.propagate(state)}
    finally:
        torch.set_num_threads(threads)
