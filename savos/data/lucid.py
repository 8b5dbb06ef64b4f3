"""Lucid dreaming (Khoreva et al.): plausible new frames synthesised from one annotated frame.

One dream: cut the objects out and inpaint the hole they leave in the background (OpenCV Telea); change the
illumination of the background and of the objects separately; move each object by its own affine motion;
paste the objects back over the background; finally change the camera view with a perspective warp of the
whole frame. The label map follows every step, so the dream's mask is exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import random_affine, random_perspective, warp_image, warp_labels

# Inpainting runs at this fraction of the frame size: Telea on a full-size hole takes seconds, and the
# background only needs to look plausible behind the pasted objects.
INPAINT_SCALE = 0.25


def inpaint_background(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The frame with every object pixel (and a margin around it) filled from the background."""
    hole = cv2.dilate((labels > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
    h, w = labels.shape
    small_size = (max(8, round(w * INPAINT_SCALE)), max(8, round(h * INPAINT_SCALE)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, small_size, interpolation=cv2.INTER_NEAREST)
    filled = cv2.resize(cv2.inpaint(small, small_hole, 3, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_LINEAR)
    out = image.copy()
    out[hole > 0] = filled[hole > 0]
    return out


def change_illumination(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Random gamma, brightness, saturation and a small hue shift (HSV), scaled by ``strength``."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6) * strength) % 180
    hsv[..., 1] *= 1 + rng.uniform(-0.25, 0.25) * strength
    value = hsv[..., 2] / 255.0
    value = value ** (1 + rng.uniform(-0.3, 0.3) * strength) * (1 + rng.uniform(-0.2, 0.2) * strength)
    hsv[..., 2] = value * 255.0
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def lucid_dream(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, motion: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """One dreamt frame ``(H, W, 3)`` and its labels ``(H, W)`` from a frame and its labels.

    ``motion`` scales how far objects and camera move (1.0: a few percent of the frame).
    """
    size = labels.shape
    background = change_illumination(inpaint_background(image, labels), rng, 0.5)
    out_image, out_labels = background, np.zeros_like(labels)
    for obj_id in [int(i) for i in np.unique(labels) if i != 0]:
        obj = labels == obj_id
        ys, xs = np.nonzero(obj)
        matrix = random_affine(
            rng,
            size,
            rotate=6.0 * motion,
            scale=(1 - 0.08 * motion, 1 + 0.08 * motion),
            shift=0.05 * motion,
            shear=0.04 * motion,
            center=(float(xs.mean()), float(ys.mean())),
        )
        moved = warp_labels(obj.astype(np.uint8), matrix) > 0
        # Feather the paste by one pixel so the object's edge is not a giveaway the net could learn.
        alpha = cv2.GaussianBlur(moved.astype(np.float32), (3, 3), 0)[..., None]
        foreground = warp_image(change_illumination(image, rng, 0.5), matrix).astype(np.float32)
        out_image = (alpha * foreground + (1 - alpha) * out_image).astype(np.uint8)
        out_labels[moved] = obj_id
    camera = random_perspective(rng, size, jitter=0.03 * motion)
    return warp_image(out_image, camera), warp_labels(out_labels, camera)


def lucid_clip(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, length: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``length`` successive dreams: each dreamt from the previous one, so motion accumulates like video."""
    images, label_maps = [], []
    for _ in range(length):
        if (labels > 0).any():
            image, labels = lucid_dream(image, labels, rng, motion=0.6)
        images.append(image)
        label_maps.append(labels)
    return images, label_maps
