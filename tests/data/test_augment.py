"""Simulated pairs, lucid dreams and composites: the labels must follow the pixels they describe."""

from __future__ import annotations

import numpy as np

from savos.data.composite import paste_objects
from savos.data.lucid import inpaint_background, lucid_clip, lucid_dream
from savos.data.simulate import deform_mask, simulated_clip

RED, BLUE = np.array([230, 20, 20]), np.array([20, 20, 230])


def _scene(height: int = 80, width: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A red square (id 1) on a smooth green-grey gradient, so the object's pixels are recognisable."""
    ramp = np.linspace(60, 120, width, dtype=np.float32)
    image = np.stack([np.tile(ramp, (height, 1)), np.full((height, width), 140.0), np.tile(ramp, (height, 1))], -1)
    image = image.astype(np.uint8)
    labels = np.zeros((height, width), np.uint8)
    labels[25:55, 40:75] = 1
    image[labels == 1] = RED
    return image, labels


def _reddish(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 150) & (r > g + 60) & (r > b + 60)


def _agreement(image: np.ndarray, labels: np.ndarray) -> float:
    """IoU of "labelled as the object" and "looks red"."""
    red, obj = _reddish(image), labels == 1
    return np.count_nonzero(red & obj) / max(1, np.count_nonzero(red | obj))


def test_deformed_mask_is_near_but_not_equal() -> None:
    _, labels = _scene()
    mask = labels == 1
    rng = np.random.default_rng(0)
    for _ in range(5):
        fake = deform_mask(mask, rng)
        iou = np.count_nonzero(fake & mask) / np.count_nonzero(fake | mask)
        assert 0.3 < iou < 0.99


def test_simulated_clip_labels_follow_the_object() -> None:
    image, labels = _scene()
    images, label_maps = simulated_clip(image, labels, np.random.default_rng(1), length=3)
    assert len(images) == 3
    for frame, ids in zip(images, label_maps, strict=True):
        assert _agreement(frame, ids) > 0.85
    assert not np.array_equal(label_maps[0], label_maps[2])  # the clip moves


def test_inpainting_removes_the_object() -> None:
    image, labels = _scene()
    assert _reddish(inpaint_background(image, labels)).sum() == 0


def test_lucid_dream_moves_object_and_keeps_its_labels() -> None:
    image, labels = _scene()
    rng = np.random.default_rng(2)
    dreamt, dreamt_labels = lucid_dream(image, labels, rng)
    assert dreamt.shape == image.shape
    assert dreamt_labels.shape == labels.shape
    assert _agreement(dreamt, dreamt_labels) > 0.8
    assert not np.array_equal(dreamt_labels, labels)
    images, label_maps = lucid_clip(image, labels, rng, length=2)
    assert all(_agreement(i, ids) > 0.7 for i, ids in zip(images, label_maps, strict=True))


def test_composite_renumbers_and_occludes() -> None:
    base_image, base_labels = _scene()
    donor_image = np.zeros_like(base_image)
    donor_labels = np.zeros_like(base_labels)
    donor_labels[10:70, 10:110] = 1  # large, so that it covers part of the base object wherever it lands
    donor_image[donor_labels == 1] = BLUE
    images, label_maps = paste_objects(
        [base_image] * 2, [base_labels] * 2, [donor_image] * 2, [donor_labels] * 2, np.random.default_rng(3)
    )
    ids = label_maps[0]
    assert set(np.unique(ids).tolist()) <= {0, 1, 2}
    assert (ids == 2).any()
    # Donor pixels are blue in the image (bar the bilinear edge), the base object's remaining ones still red.
    assert (images[0][ids == 2] == BLUE).all(axis=1).mean() > 0.9
    assert (images[0][ids == 1] == RED).all()
    np.testing.assert_array_equal(label_maps[0], label_maps[1])  # one placement for the whole clip
