"""The DAVIS semi-supervised protocol: per-object J and F per frame, then statistics pooled over all objects.

- Frames: the first (given) and the last are excluded, as in the toolkit (``[1:-1]``).
- Objects: ids 1..max of the first ground-truth frame (255 is void, never an object). A predicted object that
  is missing is an empty mask.
- Per object: mean, recall (fraction of frames > 0.5) and decay (first quarter minus last quarter; see
  :func:`savos.eval.metrics.decay` for the one deliberate fix) of J and of F.
- Summary: each statistic averaged over all objects pooled across sequences; J&F = (J-mean + F-mean) / 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .metrics import contour_accuracy, decay, mean, recall, region_similarity

VOID_ID = 255


@dataclass
class SequenceResult:
    """Per-object, per-frame measures of one sequence: ``j`` and ``f`` are ``(objects, evaluated frames)``."""

    name: str
    obj_ids: list[int]
    j: np.ndarray
    f: np.ndarray
    missing_frames: list[str] = field(default_factory=list)

    def object_stats(self) -> list[dict[str, float]]:
        """Mean, recall and decay of J and F for each object."""
        return [_stats(self.j[i], self.f[i]) for i in range(len(self.obj_ids))]

    def summary(self) -> dict[str, float]:
        """This sequence's statistics averaged over its objects."""
        return _average(self.object_stats())


def evaluate_sequence(
    name: str, gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], missing_frames: Sequence[str] = ()
) -> SequenceResult:
    """Measure predicted label maps against ground truth, frame for frame (both ``(H, W)`` ids, same length)."""
    if len(gt) != len(pred):
        raise ValueError(f"{name}: {len(gt)} ground-truth frames but {len(pred)} predictions")
    first = gt[0]
    obj_ids = list(range(1, int(first[first != VOID_ID].max(initial=0)) + 1))
    frames = range(1, len(gt) - 1)
    j = np.full((len(obj_ids), len(frames)), np.nan)
    f = np.full((len(obj_ids), len(frames)), np.nan)
    for col, t in enumerate(frames):
        void = gt[t] == VOID_ID
        for row, obj_id in enumerate(obj_ids):
            obj_gt, obj_pred = gt[t] == obj_id, pred[t] == obj_id
            j[row, col] = region_similarity(obj_pred, obj_gt, void)
            f[row, col] = contour_accuracy(obj_pred, obj_gt, void)
    return SequenceResult(name, obj_ids, j, f, list(missing_frames))


def summarise(results: Sequence[SequenceResult]) -> dict[str, float]:
    """The DAVIS summary: every statistic averaged over all objects of all sequences, and J&F."""
    return _average([stats for result in results for stats in result.object_stats()])


def _stats(j: np.ndarray, f: np.ndarray) -> dict[str, float]:
    if j.size == 0:  # a two-frame sequence has nothing to evaluate
        return dict.fromkeys(("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"), math.nan)
    return {
        "J-Mean": mean(j),
        "J-Recall": recall(j),
        "J-Decay": decay(j),
        "F-Mean": mean(f),
        "F-Recall": recall(f),
        "F-Decay": decay(f),
    }


def _average(stats: list[dict[str, float]]) -> dict[str, float]:
    keys = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
    out = {key: float(np.mean([s[key] for s in stats])) if stats else math.nan for key in keys}
    return {"J&F-Mean": (out["J-Mean"] + out["F-Mean"]) / 2, **out}
