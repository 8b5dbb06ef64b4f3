"""Multi-object clips composited from single-object footage: the objects of one clip pasted over another.

DAVIS-2016 masks are one object per sequence. Pasting a donor clip's objects, moved by one fixed affine, over a
base clip gives real footage with several objects whose masks are known exactly (occlusions included), the data
that soft aggregation is trained and evaluated on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .geometry import random_affine, warp_image, warp_labels
from .masks import write_palette_png
from .vos import Sequence


def random_placement(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Where the donor goes: one ``(2, 3)`` affine (smaller, shifted, barely rotated) for a whole clip."""
    return random_affine(rng, size, rotate=5.0, scale=(0.5, 0.9), shift=0.25, shear=0.0)


def paste_frame(
    image: np.ndarray,
    labels: np.ndarray,
    donor_image: np.ndarray,
    donor_labels: np.ndarray,
    placement: np.ndarray,
    id_offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame: the donor's objects, moved by ``placement``, pasted in front with ids + ``id_offset``."""
    moved = warp_labels(donor_labels, placement)
    pasted = moved > 0
    image = image.copy()
    image[pasted] = warp_image(donor_image, placement)[pasted]
    labels = labels.copy()
    labels[pasted] = moved[pasted].astype(labels.dtype) + id_offset
    return image, labels


def paste_objects(
    base_images: list[np.ndarray],
    base_labels: list[np.ndarray],
    donor_images: list[np.ndarray],
    donor_labels: list[np.ndarray],
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Paste the donor's objects over the base clip, frame by frame (clips of equal length and frame size).

    Donor ids are renumbered after the base's largest id; the pasted objects are in front, so base pixels they
    cover become theirs. One :func:`random_placement` for every frame, so the donor keeps its own motion.
    """
    if len(base_images) != len(donor_images):
        raise ValueError("base and donor clips must have the same length")
    offset = max(int(labels.max()) for labels in base_labels)
    placement = random_placement(rng, base_labels[0].shape)
    pasted = [
        paste_frame(image, labels, donor_image, donor, placement, offset)
        for image, labels, donor_image, donor in zip(base_images, base_labels, donor_images, donor_labels, strict=True)
    ]
    return [image for image, _ in pasted], [labels for _, labels in pasted]


def write_composite_sequence(base: Sequence, donor: Sequence, out_root: Path, rng: np.random.Generator) -> str:
    """Write ``<base>+<donor>`` as a DAVIS sequence (JPEG frames, palette masks) under ``out_root``.

    As long as the shorter of the two; the base keeps its ids, the donor's follow. Returns the sequence name.
    """
    name = f"{base.name}+{donor.name}"
    frame_dir = out_root / "JPEGImages" / "480p" / name
    mask_dir = out_root / "Annotations" / "480p" / name
    frame_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    first = base.labels(0)
    placement = random_placement(rng, first.shape)
    offset = int(first[first != 255].max(initial=0))
    for t in range(min(len(base), len(donor))):
        donor_image, donor_labels = donor.image(t), donor.labels(t)
        if donor_labels.shape != first.shape:
            raise InputError(donor.frames[t], f"frame size {donor_labels.shape} differs from {base.name}'s")
        image, labels = paste_frame(base.image(t), base.labels(t), donor_image, donor_labels, placement, offset)
        with Image.fromarray(image) as frame:
            frame.save(frame_dir / f"{t:05d}.jpg", quality=95)
        write_palette_png(mask_dir / f"{t:05d}.png", labels)
    return name
