"""Evaluate a folder of predicted masks against a folder of ground truth, one process per sequence.

Ground truth: a DAVIS root (``Annotations/480p/<seq>/`` or ``Annotations/<seq>/``) or a folder of per-sequence
mask folders. Predictions: ``<seq>/<frame>.png`` with the same frame names. A predicted frame that is missing is
scored as an empty mask and named in the result, so a partial run can never look better than it is.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..data.errors import InputError
from ..data.masks import read_mask
from ..data.vos import annotation_dir
from .protocol import SequenceResult, evaluate_sequence


def ground_truth_dir(root: str | os.PathLike[str]) -> Path:
    """The folder of per-sequence mask folders under ``root`` (a DAVIS root or that folder itself)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "ground-truth folder not found")
    return annotation_dir(root) if (root / "Annotations").is_dir() else root


def list_sequences(gt_dir: Path) -> list[str]:
    names = sorted(p.name for p in gt_dir.iterdir() if p.is_dir() and any(p.glob("*.png")))
    if not names:
        raise InputError(gt_dir, "no sequence folders with .png masks")
    return names


def evaluate_one(gt_seq: Path, pred_seq: Path) -> SequenceResult:
    """Score one sequence folder of predictions against its ground-truth folder."""
    gt_paths = sorted(gt_seq.glob("*.png"))
    gt = [read_mask(p, allow_empty=True, keep_void=True) for p in gt_paths]
    preds, missing = [], []
    for path, labels in zip(gt_paths, gt, strict=True):
        pred_path = pred_seq / path.name
        if pred_path.is_file():
            preds.append(read_mask(pred_path, labels.shape, allow_empty=True))
        else:
            missing.append(path.stem)
            preds.append(np.zeros_like(labels))
    return evaluate_sequence(gt_seq.name, gt, preds, missing)


def evaluate_folders(
    gt_root: str | os.PathLike[str],
    pred_root: str | os.PathLike[str],
    sequences: Iterable[str] | None = None,
    processes: int | None = None,
) -> list[SequenceResult]:
    """Results for every ground-truth sequence (or only ``sequences``), in name order.

    ``processes``: worker processes (default: one per CPU, at most one per sequence; 1 runs inline).
    """
    gt_dir, pred_dir = ground_truth_dir(gt_root), Path(pred_root)
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "prediction folder not found")
    names = list_sequences(gt_dir) if sequences is None else sorted(sequences)
    for name in names:
        if not (gt_dir / name).is_dir():
            raise InputError(gt_dir / name, f"no ground truth for sequence {name!r}")
    jobs = [(gt_dir / name, pred_dir / name) for name in names]
    workers = min(processes or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [evaluate_one(*job) for job in jobs]
    # spawn, not fork: callers (the training loop) may hold threads that a fork would copy half-way.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(evaluate_one, *zip(*jobs, strict=True)))
