"""The training forward pass: batching objects of several clips, soft aggregation, recurrent guidance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from savos.inference.aggregate import soft_aggregate
from savos.model import SAVOS, EncoderFeatures
from savos.train.clips import Clip
from savos.train.recurrent import clip_loss, collate


def _clip(num_objects: int, seed: int, size: tuple[int, int] = (32, 48), length: int = 2) -> Clip:
    rng = np.random.default_rng(seed)
    h, w = size

    def labels() -> np.ndarray:
        ids = np.zeros(size, np.uint8)
        for m in range(1, num_objects + 1):
            y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
            ids[y : y + 8, x : x + 8] = m
        return ids

    image = lambda: rng.integers(0, 255, (h, w, 3), dtype=np.uint8)  # noqa: E731
    return Clip(
        "video",
        image(),
        labels(),
        [image() for _ in range(length)],
        [labels() for _ in range(length)],
        rng.random((num_objects, h, w)) > 0.5,
    )


def test_collate_flattens_objects() -> None:
    batch = collate([_clip(1, 0), _clip(2, 1)])
    assert batch.objects == [1, 2]
    assert batch.reference_images.shape == (3, 3, 32, 48)
    assert batch.reference_masks.shape == batch.first_guidance.shape == (3, 1, 32, 48)
    assert batch.targets.shape == (2, 3, 3, 32, 48)
    assert batch.labels.shape == (2, 2, 32, 48)
    # The second clip's two rows are its objects 1 and 2 over the same image.
    torch.testing.assert_close(batch.reference_images[1], batch.reference_images[2])
    assert batch.reference_masks[2].sum() > 0


def test_loss_backpropagates_and_feeds_aggregated_probabilities(
    tiny_model: SAVOS, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = collate([_clip(1, 0), _clip(2, 1)])
    seen: list[torch.Tensor] = []
    original = tiny_model.encode_target

    def spy(image: torch.Tensor, guidance: torch.Tensor) -> EncoderFeatures:
        seen.append(guidance)
        return original(image, guidance)

    monkeypatch.setattr(tiny_model, "encode_target", spy)
    tiny_model.train()
    loss = clip_loss(tiny_model, batch)
    assert torch.isfinite(loss)
    assert loss > 0
    loss.backward()
    assert all(p.grad is not None for p in tiny_model.head.parameters())

    assert len(seen) == 2
    torch.testing.assert_close(seen[0], batch.first_guidance)
    # Frame 1's guidance: frame 0's per-object probabilities, soft-aggregated within each clip, detached.
    with torch.no_grad():
        top = tiny_model.encode_reference(batch.reference_images, batch.reference_masks)
        logits = tiny_model.decode(top, original(batch.targets[0], batch.first_guidance), (32, 48))
        probs = F.interpolate(logits, size=(32, 48), mode="bilinear", align_corners=False).softmax(1)[:, 1]
        expected = torch.cat([soft_aggregate(p)[1:] for p in probs.split([1, 2])]).unsqueeze(1)
    torch.testing.assert_close(seen[1], expected)
    assert not seen[1].requires_grad
    assert ((seen[1] > 0.01) & (seen[1] < 0.99)).any()  # probabilities, not a binarised mask


def test_void_pixels_are_ignored(tiny_model: SAVOS) -> None:
    clip = _clip(1, 2)
    for ids in clip.labels:
        ids[:, :16] = 255  # DAVIS void
    batch = collate([clip])
    assert (batch.labels[..., :16] == -100).all()
    # Whatever the labels were under void, the loss is the same (an id 255 would otherwise crash the NLL).
    other = collate([clip])
    other.labels[..., :16] = -100
    other.labels[..., 16:] = batch.labels[..., 16:]
    assert torch.isfinite(clip_loss(tiny_model, batch))
    torch.testing.assert_close(clip_loss(tiny_model, batch), clip_loss(tiny_model, other))
