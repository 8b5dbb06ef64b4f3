"""An estimate of J from the model's own score, for review priority.

The per-object score (the mean aggregated probability over the object's mask on a frame) ranks videos well but
is not a J: a score of 0.93 can mean anything from 0.46 to 0.77. A monotone map from score to the expected J
of that frame, fitted by isotonic regression on predictions with ground truth (``savos calibrate``), turns it
into one: averaged over an object's frames it estimates the object's J, and over the objects, the video's.

The map is stored in the checkpoint's metadata (``j_calibration``), one per test-time preset, as the fitted
breakpoints; applying it is a linear interpolation between them (what scikit-learn's ``IsotonicRegression``
predicts, with out-of-range scores clipped), so only fitting needs scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CALIBRATION_KEY = "j_calibration"  # in a checkpoint's meta: {preset name: JCalibration.to_dict()}


@dataclass(frozen=True)
class JCalibration:
    """Score -> expected J of a frame: increasing breakpoints, linear between them, constant beyond."""

    scores: tuple[float, ...]
    j: tuple[float, ...]
    fitted_on: str = ""  # what it was fitted on, for the record

    def __post_init__(self) -> None:
        if not self.scores or len(self.scores) != len(self.j):
            raise ValueError("a calibration needs as many J values as scores, at least one")
        if any(b < a for a, b in zip(self.scores, self.scores[1:], strict=False)):
            raise ValueError("calibration scores must be increasing")

    def estimate(self, scores: np.ndarray | list[float]) -> np.ndarray:
        """The expected J of each frame-object score (float32)."""
        return np.interp(np.asarray(scores, np.float64), self.scores, self.j).astype(np.float32)

    @classmethod
    def fit(cls, scores: np.ndarray, j: np.ndarray, fitted_on: str = "", method: str = "linear") -> JCalibration:
        """A map fitted to (score, J) pairs, one per object and frame.

        ``isotonic``: scikit-learn's isotonic regression, the closest monotone map. ``linear``: a least-squares
        line clipped to [0, 1]; where it is not clipped, the mean of an object's frame estimates is the line at
        its mean score, so ranking objects by it is ranking them by mean score, whose order a step-wise map
        scrambles when averaged over frames.
        """
        x, y = np.asarray(scores, np.float64), np.asarray(j, np.float64)
        try:
            import sklearn  # noqa: F401
        except ImportError as err:
            raise ImportError("fitting a calibration needs scikit-learn: pip install 'savos[calibrate]'") from err
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            regression = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(x, y)
            return cls(
                tuple(map(float, regression.X_thresholds_)), tuple(map(float, regression.y_thresholds_)), fitted_on
            )
        if method != "linear":
            raise ValueError(f"unknown calibration method {method!r}; choose isotonic or linear")
        from sklearn.linear_model import LinearRegression

        line = LinearRegression().fit(x[:, None], y)
        slope, intercept = float(line.coef_[0]), float(line.intercept_)
        if slope <= 0:
            raise ValueError(f"J does not rise with the score in these pairs (slope {slope:.3f}): no calibration")
        # The line's points at 0 and 1 and where it leaves [0, 1]: np.interp holds the ends beyond them.
        knots = sorted({0.0, 1.0, *(x_ for x_ in (-intercept / slope, (1 - intercept) / slope) if 0 < x_ < 1)})
        return cls(tuple(knots), tuple(float(np.clip(slope * k + intercept, 0, 1)) for k in knots), fitted_on)

    def to_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "j": list(self.j), "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JCalibration:
        return cls(tuple(data["scores"]), tuple(data["j"]), str(data.get("fitted_on", "")))


def calibration_of(meta: Mapping[str, Any], preset: str) -> JCalibration | None:
    """The checkpoint's calibration for the test-time preset ``preset``; None when it has none."""
    found = (meta.get(CALIBRATION_KEY) or {}).get(preset)
    return JCalibration.from_dict(found) if found else None
