"""Training clips simulated from one annotated still image (the paper's pretraining data).

The reference is the image with its mask. Targets are the image mirrored and moved by small affine motions that
accumulate from one target to the next. The guidance of the first target is a fake previous mask: the target's
own mask sheared and dilated or eroded, so the network learns to correct an imperfect propagated mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import mirror, random_affine, warp_image, warp_labels


def deform_mask(mask: np.ndarray, rng: np.random.Generator, *, max_kernel: int = 15) -> np.ndarray:
    """A fake previous-frame mask ``(H, W)`` bool: ``mask`` sheared a little, then dilated or eroded."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    center = (float(xs.mean()), float(ys.mean())) if len(xs) else None
    matrix = random_affine(rng, (h, w), rotate=5.0, scale=(0.95, 1.05), shift=0.02, shear=0.15, center=center)
    deformed = warp_labels(mask.astype(np.uint8), matrix)
    size = int(rng.integers(1, max_kernel // 2 + 1)) * 2 + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    deformed = cv2.dilate(deformed, kernel) if rng.random() < 0.5 else cv2.erode(deformed, kernel)
    return deformed.astype(bool)


def simulated_clip(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, length: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``length`` target frames and label maps made from one image ``(H, W, 3)`` and its labels ``(H, W)``.

    The first target is mirrored (half of the time) and moved; each later one moves on from the previous.
    """
    if rng.random() < 0.5:
        image, labels = mirror(image, labels)
    images, label_maps = [], []
    for _ in range(length):
        matrix = random_affine(rng, labels.shape, rotate=8.0, scale=(0.92, 1.08), shift=0.04, shear=0.04)
        image, labels = warp_image(image, matrix), warp_labels(labels, matrix)
        images.append(image)
        label_maps.append(labels)
    return images, label_maps
