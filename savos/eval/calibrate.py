"""Fit and check the score -> J calibration (:mod:`savos.calibration`) on sequences with ground truth.

Each sequence is propagated from its first frame's mask, as the job does; every (object, frame) of the
protocol's frames (first and last excluded) gives a pair: the object's score on that frame (its mean
aggregated probability over its mask, 0 when its mask is empty) and its J against the ground truth.

How well the estimate ranks and how far it is from the truth are measured by leaving one sequence out: its
objects are estimated by a calibration fitted on the other sequences only, so no sequence is scored by a map
fitted on itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..calibration import JCalibration
from ..data.annotations import first_frame_annotation
from ..data.frames import FrameFolder
from ..data.masks import read_mask
from ..data.vos import Sequence
from ..inference import Predictor
from ..inference.aggregate import labels_and_scores
from .metrics import region_similarity
from .protocol import VOID_ID


@dataclass
class Pairs:
    """Score and J of each (object, frame): ``video`` and ``obj`` name the object."""

    video: list[str] = field(default_factory=list)
    obj: list[int] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    j: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[Any]]:
        return {"video": self.video, "obj": self.obj, "score": self.score, "j": self.j}

    @classmethod
    def from_dict(cls, data: dict[str, list[Any]]) -> Pairs:
        return cls(list(data["video"]), [int(i) for i in data["obj"]], list(data["score"]), list(data["j"]))


def collect_pairs(
    predictor: Predictor, sequences: Iterable[Sequence], on_frame: Callable[[int], object] | None = None
) -> Pairs:
    """Propagate each sequence from its first mask and pair every object's score with its J, frame by frame."""
    pairs = Pairs()
    for seq in sequences:
        frames = FrameFolder(seq.frames[0].parent)
        annotation = first_frame_annotation(seq.masks[seq.frames[0].stem], frames)[0]
        state = predictor.init_state(frames)
        for obj_id in (int(i) for i in np.unique(annotation) if 0 < i < VOID_ID):
            predictor.add_mask(state, 0, obj_id, annotation == obj_id)
        last = len(seq.frames) - 1
        for frame_idx, obj_ids, probs in predictor.propagate(state):
            if on_frame is not None:
                on_frame(1)
            if not 0 < frame_idx < last:
                continue
            path = seq.masks.get(seq.frames[frame_idx].stem)
            if path is None:
                continue
            labels, scores = labels_and_scores(obj_ids, probs)
            truth = read_mask(path, labels.shape, allow_empty=True, keep_void=True)
            void = truth == VOID_ID
            for obj_id, score in zip(obj_ids, scores.tolist(), strict=True):
                pairs.video.append(seq.name)
                pairs.obj.append(obj_id)
                pairs.score.append(float(score))
                pairs.j.append(region_similarity(labels == obj_id, truth == obj_id, void))
    return pairs


def fit(pairs: Pairs, method: str, fitted_on: str = "") -> JCalibration:
    return JCalibration.fit(np.array(pairs.score), np.array(pairs.j), fitted_on, method)


def cross_validate(pairs: Pairs, method: str) -> dict[str, Any]:
    """Leave one sequence out: per object and per video, the estimated J (from a calibration fitted without
    that sequence) and the raw mean score against the true J: rank correlation (Spearman) and mean absolute
    error. Also the estimate of the one map fitted on all pairs (``estimate_one_map``): the ranking a review
    gets (its error is in-sample, so optimistic)."""
    from scipy.stats import spearmanr

    video, obj = np.array(pairs.video), np.array(pairs.obj)
    score, j = np.array(pairs.score), np.array(pairs.j)
    whole = JCalibration.fit(score, j, method=method)
    rows: list[dict[str, Any]] = []
    for name in sorted(set(pairs.video)):
        held = video == name
        calibration = JCalibration.fit(score[~held], j[~held], method=method)
        for obj_id in sorted(set(obj[held].tolist())):
            mine = held & (obj == obj_id)
            rows.append(
                {
                    "video": name,
                    "obj_id": int(obj_id),
                    "j": float(j[mine].mean()),
                    "score": float(score[mine].mean()),
                    "estimate": float(calibration.estimate(score[mine]).mean()),
                    "estimate_one_map": float(whole.estimate(score[mine]).mean()),
                }
            )
    videos = []
    for name in sorted(set(pairs.video)):
        mine = [row for row in rows if row["video"] == name]
        keys = ("j", "score", "estimate", "estimate_one_map")
        videos.append({key: float(np.mean([row[key] for row in mine])) for key in keys})

    def measures(items: list[dict[str, Any]]) -> dict[str, float]:
        truth = np.array([item["j"] for item in items])
        out: dict[str, float] = {"count": len(items)}
        for key in ("estimate", "estimate_one_map", "score"):
            values = np.array([item[key] for item in items])
            out[f"spearman_{key}"] = float(spearmanr(values, truth).statistic) if len(items) > 2 else float("nan")
            out[f"mean_abs_error_{key}"] = float(np.mean(np.abs(values - truth)))
        return out

    return {"objects": measures(rows), "videos": measures(videos), "per_object": rows}
