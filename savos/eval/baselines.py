"""Two reference points for any trained model, scored with the same evaluator.

- ``copy``: the first frame's mask, repeated on every frame (what a labeller starts from without the product).
- ``flow``: the mask warped from each frame to the next by dense optical flow (OpenCV Farnebäck), the classic
  propagation baseline without learning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

BASELINES = ("copy", "flow")


def copy_first_mask(frames: Iterable[np.ndarray], first_labels: np.ndarray) -> Iterator[np.ndarray]:
    """The first frame's label map for every frame."""
    for _ in frames:
        yield first_labels


def flow_warp(frames: Iterable[np.ndarray], first_labels: np.ndarray) -> Iterator[np.ndarray]:
    """Warp the labels frame to frame along the backward flow (each pixel looks up where it came from)."""
    labels, previous = first_labels, None
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if previous is not None:
            h, w = gray.shape
            flow = np.zeros((h, w, 2), np.float32)  # output buffer (an initial guess only with a flag we omit)
            flow = cv2.calcOpticalFlowFarneback(gray, previous, flow, 0.5, 4, 21, 3, 7, 1.5, 0)
            grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            labels = cv2.remap(labels, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_NEAREST)
        previous = gray
        yield labels


def run_baseline(name: str, frames: Iterable[np.ndarray], first_labels: np.ndarray) -> Iterator[np.ndarray]:
    """Label maps ``(H, W)`` for every frame (frame 0 included) from the named baseline."""
    if name == "copy":
        return copy_first_mask(frames, first_labels)
    if name == "flow":
        return flow_warp(frames, first_labels)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
