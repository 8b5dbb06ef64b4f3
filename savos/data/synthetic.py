"""Synthetic videos with exact masks: textured shapes moving over a textured background.

Used by the demo corpus and by tests; every pixel's object id is known, so masks are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SyntheticVideo:
    """``frames (T, H, W, 3)`` uint8 RGB and ``masks (T, H, W)`` uint8 ids (0 background, 1..K objects)."""

    frames: np.ndarray
    masks: np.ndarray

    def first_masks(self, count: int) -> dict[int, np.ndarray]:
        """Objects ``1..count`` in frame 0, as ``{id: (H, W) bool}``; refused if one of them is hidden there."""
        first = {i: self.masks[0] == i for i in range(1, count + 1)}
        hidden = [i for i, mask in first.items() if not mask.any()]
        if hidden:
            raise RuntimeError(f"synthetic clip: objects {hidden} are hidden in frame 0; change the seed")
        return first


def _texture(rng: np.random.Generator, height: int, width: int, base: np.ndarray, grain: int) -> np.ndarray:
    """Smooth random texture around a base colour, with blobs about ``grain`` pixels wide."""
    coarse = rng.normal(0, 1, (max(2, height // grain), max(2, width // grain), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + 40 * smooth, 0, 255).astype(np.uint8)


def make_video(
    num_frames: int = 8,
    height: int = 64,
    width: int = 96,
    num_objects: int = 2,
    seed: int = 0,
    grain: int = 8,
) -> SyntheticVideo:
    """A clip where ``num_objects`` ellipses move on straight, bouncing paths; later ids are drawn on top."""
    return SyntheticVideo(
        *map(np.stack, zip(*iter_video(num_frames, height, width, num_objects, seed, grain), strict=True))
    )


def iter_video(
    num_frames: int, height: int, width: int, num_objects: int, seed: int = 0, grain: int = 8
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The frames of :func:`make_video` one at a time, ``(frame, ids)``, without holding the whole clip."""
    rng = np.random.default_rng(seed)
    background = _texture(rng, height, width, rng.uniform(60, 190, 3), grain)
    objects = []
    for _ in range(num_objects):
        axes = rng.uniform(0.08, 0.2, 2) * (width, height)
        centre = rng.uniform(0.25, 0.75, 2) * (width, height)
        velocity = rng.uniform(-0.02, 0.02, 2) * (width, height)
        skin = _texture(rng, height, width, rng.uniform(0, 255, 3), grain)
        objects.append((axes, centre, velocity, skin))
    for t in range(num_frames):
        frame, ids = background.copy(), np.zeros((height, width), np.uint8)
        for obj_id, (axes, centre, velocity, skin) in enumerate(objects, start=1):
            x, y = _bounce(centre + t * velocity, (width, height))
            shape = np.zeros((height, width), np.uint8)
            cv2.ellipse(shape, (round(x), round(y)), (round(axes[0]), round(axes[1])), 15.0 * t, 0, 360, 1, -1)
            inside = shape.astype(bool)
            frame[inside] = skin[inside]
            ids[inside] = obj_id
        yield frame, ids


def _bounce(position: np.ndarray, bounds: tuple[int, int]) -> tuple[float, float]:
    """Reflect a point moving in a straight line off the borders of ``bounds = (W, H)``."""
    out = []
    for p, limit in zip(position, bounds, strict=True):
        period = 2 * limit
        p = p % period
        out.append(period - p if p > limit else p)
    return out[0], out[1]
