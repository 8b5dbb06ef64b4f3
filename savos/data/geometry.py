"""Random geometric transforms applied identically to a frame and its label map (OpenCV warps)."""

from __future__ import annotations

import cv2
import numpy as np


def random_affine(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    rotate: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shift: float = 0.05,
    shear: float = 0.05,
    center: tuple[float, float] | None = None,
) -> np.ndarray:
    """A ``(2, 3)`` affine matrix: rotation (degrees) and scale about ``center`` (default: the image centre),
    a shear, and a shift (fraction of the size). ``size = (H, W)``."""
    h, w = size
    cx, cy = center if center is not None else (w / 2, h / 2)
    matrix = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-rotate, rotate), rng.uniform(*scale))
    shear_matrix = np.array([[1, rng.uniform(-shear, shear), 0], [rng.uniform(-shear, shear), 1, 0]])
    shear_matrix[:, 2] = [-shear_matrix[0, 1] * cy, -shear_matrix[1, 0] * cx]  # shear about the centre too
    combined = _compose(matrix, shear_matrix)
    combined[:, 2] += rng.uniform(-shift, shift, size=2) * (w, h)
    return combined


def random_perspective(rng: np.random.Generator, size: tuple[int, int], jitter: float = 0.05) -> np.ndarray:
    """A ``(3, 3)`` homography moving each image corner by up to ``jitter`` of the size: a camera view change."""
    h, w = size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    moved = corners + (rng.uniform(-jitter, jitter, size=(4, 2)) * (w, h)).astype(np.float32)
    return cv2.getPerspectiveTransform(corners, moved)


def warp_image(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Warp an ``(H, W, C)`` image (bilinear, reflected border) by a 2×3 affine or 3×3 homography."""
    h, w = image.shape[:2]
    if matrix.shape == (3, 3):
        return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def warp_labels(labels: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Warp an ``(H, W)`` label map (nearest neighbour; what comes in from outside is background)."""
    h, w = labels.shape[:2]
    if matrix.shape == (3, 3):
        return cv2.warpPerspective(labels, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return cv2.warpAffine(labels, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)


def mirror(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-right flip of a frame and its labels."""
    return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(labels[:, ::-1])


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine ``a ∘ b`` (apply b first) of two 2×3 matrices."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]
