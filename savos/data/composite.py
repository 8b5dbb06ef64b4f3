"""Multi-object clips composited from single-object footage: the objects of one clip pasted over another.

DAVIS-2016 masks are one object per sequence. Pasting a donor clip's objects, moved by one fixed affine, over a
base clip gives real footage with several objects whose masks are known exactly (occlusions included), the data
that soft aggregation is trained and evaluated on.
"""

from __future__ import annotations

import numpy as np

from .geometry import random_affine, warp_image, warp_labels


def paste_objects(
    base_images: list[np.ndarray],
    base_labels: list[np.ndarray],
    donor_images: list[np.ndarray],
    donor_labels: list[np.ndarray],
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Paste the donor's objects over the base clip, frame by frame (clips of equal length and frame size).

    Donor ids are renumbered after the base's largest id; the pasted objects are in front, so base pixels they
    cover become theirs. One random affine (scale, shift) places the donor, the same for every frame, so the
    donor keeps its own motion.
    """
    if len(base_images) != len(donor_images):
        raise ValueError("base and donor clips must have the same length")
    offset = max(int(labels.max()) for labels in base_labels)
    matrix = random_affine(rng, base_labels[0].shape, rotate=5.0, scale=(0.5, 0.9), shift=0.25, shear=0.0)
    images, label_maps = [], []
    for image, labels, donor_image, donor in zip(base_images, base_labels, donor_images, donor_labels, strict=True):
        moved = warp_labels(donor, matrix)
        pasted = moved > 0
        image = image.copy()
        image[pasted] = warp_image(donor_image, matrix)[pasted]
        labels = labels.copy()
        labels[pasted] = moved[pasted].astype(labels.dtype) + offset
        images.append(image)
        label_maps.append(labels)
    return images, label_maps
