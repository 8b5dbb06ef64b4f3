"""DAVIS region (J) and boundary (F) measures, as the official toolkit computes them.

Reference: davisvideochallenge/davis2017-evaluation, ``davis2017/metrics.py`` and ``utils.py``. Every rule below
is the toolkit's, including its edge cases; the one deliberate difference is in :func:`decay` (see there).
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np

BOUNDARY_FRACTION = 0.008  # of the image diagonal


def region_similarity(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """J: intersection over union of two boolean masks; 1.0 when both are empty. ``void`` pixels are ignored."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if void is not None:
        keep = ~void.astype(bool)
        pred, gt = pred & keep, gt & keep
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels: those that differ from their east, south or south-east neighbour.

    The last row compares only east, the last column only south, and the bottom-right pixel is never boundary.
    """
    seg = mask.astype(bool)
    east, south, south_east = (np.zeros_like(seg) for _ in range(3))
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def disk(radius: int) -> np.ndarray:
    """The points with x² + y² ≤ r² (``skimage.morphology.disk``), as a uint8 structuring element."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def boundary_tolerance(height: int, width: int) -> int:
    """``ceil(0.008 * diagonal)`` pixels: 8 at 854×480."""
    return math.ceil(BOUNDARY_FRACTION * math.hypot(height, width))


def contour_accuracy(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """F: boundary F-measure with a disk tolerance of :func:`boundary_tolerance` pixels.

    As in the toolkit, ``void`` pixels are removed from the prediction only.

    Edge cases (the toolkit's): empty predicted boundary and non-empty GT boundary: P = 1, R = 0; non-empty
    prediction and empty GT: P = 0, R = 1; both empty: F = 1; P + R = 0: F = 0.
    """
    if void is not None:
        pred = pred.astype(bool) & ~void.astype(bool)
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        kernel = disk(boundary_tolerance(*pred.shape[:2]))
        pred_dilated = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
        gt_dilated = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
        precision = np.count_nonzero(pred_b & gt_dilated) / n_pred
        recall = np.count_nonzero(gt_b & pred_dilated) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def decay_bins(num_frames: int, num_bins: int = 4) -> list[slice]:
    """The toolkit's frame bins: edges ``round(linspace(1, N, bins + 1)) - 1``, each bin inclusive of its end."""
    edges = (np.round(np.linspace(1, num_frames, num_bins + 1) + 1e-10) - 1).astype(np.int64)
    return [slice(int(edges[i]), int(edges[i + 1]) + 1) for i in range(num_bins)]


def mean(per_frame: np.ndarray) -> float:
    """Mean over frames, ignoring NaN."""
    return float(np.nanmean(per_frame))


def recall(per_frame: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of frames whose measure exceeds ``threshold``."""
    return float(np.nanmean(per_frame > threshold))


def decay(per_frame: np.ndarray) -> float:
    """Mean of the first quarter of the frames minus the mean of the last quarter.

    The official code casts the bin edges to uint8, so for sequences longer than 256 frames the edges wrap
    around and the quarters are wrong. Here the edges are 64-bit integers: identical results up to 256 frames,
    correct ones beyond.
    """
    bins = decay_bins(len(per_frame))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bin gives NaN, as in the toolkit
        return float(np.nanmean(per_frame[bins[0]]) - np.nanmean(per_frame[bins[-1]]))
