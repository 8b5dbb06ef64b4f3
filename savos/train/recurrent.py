"""One training step's forward pass: clips run frame by frame, exactly as inference propagates.

Every object of every clip is one row of the network's batch (each object is segmented as if alone). Per clip,
the objects' probabilities are soft-aggregated; the loss is the negative log-likelihood of the true label under
the aggregated distribution (so aggregation is trained, not only used), plus a soft IoU term per object. The
aggregated probabilities, detached, guide the next target frame: the model learns to live with its own errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..inference.aggregate import EPS, soft_aggregate
from ..model.backbone import EncoderFeatures
from .clips import Clip


@dataclass
class ClipBatch:
    """Tensors of B clips with N = Σ objects rows: images ``(N, 3, H, W)`` in [0, 1], masks ``(N, 1, H, W)``,
    ``targets (T, N, 3, H, W)``, ``labels (B, T, H, W)`` int64, ``objects`` = M per clip."""

    reference_images: torch.Tensor
    reference_masks: torch.Tensor
    first_guidance: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor
    objects: list[int]

    def to(self, device: torch.device) -> ClipBatch:
        return ClipBatch(
            self.reference_images.to(device, non_blocking=True),
            self.reference_masks.to(device, non_blocking=True),
            self.first_guidance.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.labels.to(device, non_blocking=True),
            self.objects,
        )


def _image(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def collate(clips: list[Clip]) -> ClipBatch:
    """Stack clips of one size and length into a :class:`ClipBatch`."""
    ref_images, ref_masks, guidance, targets = [], [], [], []
    for clip in clips:
        m = clip.num_objects
        ref_images.append(_image(clip.reference_image).expand(m, -1, -1, -1))
        ids = torch.from_numpy(clip.reference_labels.astype(np.int64))
        ref_masks.append(torch.stack([(ids == k + 1).float() for k in range(m)]).unsqueeze(1))
        guidance.append(torch.from_numpy(clip.first_guidance).float().unsqueeze(1))
        targets.append(torch.stack([_image(image).expand(m, -1, -1, -1) for image in clip.images]))
    labels = torch.stack([torch.from_numpy(np.stack(c.labels).astype(np.int64)) for c in clips])
    labels[labels == 255] = -100  # void: ignored by the loss
    return ClipBatch(
        torch.cat(ref_images),
        torch.cat(ref_masks),
        torch.cat(guidance),
        torch.cat(targets, dim=1),
        labels,
        [c.num_objects for c in clips],
    )


class Propagator(Protocol):
    """The network's three steps (:class:`~savos.model.SAVOS` has them)."""

    def encode_reference(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...

    def encode_target(self, image: torch.Tensor, guidance: torch.Tensor) -> EncoderFeatures: ...

    def decode(self, reference_top: torch.Tensor, target: EncoderFeatures, size: tuple[int, int]) -> torch.Tensor: ...


def clip_loss(model: Propagator, batch: ClipBatch) -> torch.Tensor:
    """Mean over clips and target frames of NLL(aggregated probabilities) + soft IoU loss."""
    reference_top = model.encode_reference(batch.reference_images, batch.reference_masks)
    guidance = batch.first_guidance
    size = (batch.targets.shape[-2], batch.targets.shape[-1])
    total = batch.targets.new_zeros(())
    for t in range(batch.targets.shape[0]):
        logits = model.decode(reference_top, model.encode_target(batch.targets[t], guidance), size)
        logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        object_probs = logits.softmax(dim=1)[:, 1]
        next_guidance = []
        for clip_idx, probs in enumerate(object_probs.split(batch.objects)):
            aggregated = soft_aggregate(probs)  # (M + 1, H, W)
            labels = batch.labels[clip_idx, t]
            nll = F.nll_loss(aggregated.clamp_min(EPS).log().unsqueeze(0), labels.unsqueeze(0), ignore_index=-100)
            total = total + nll + _soft_iou_loss(aggregated[1:], labels)
            next_guidance.append(aggregated[1:].detach())
        guidance = torch.cat(next_guidance).unsqueeze(1)
    return total / (len(batch.objects) * batch.targets.shape[0])


def _soft_iou_loss(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over objects of 1 − soft IoU (void pixels excluded)."""
    valid = (labels != -100).float()
    truth = torch.stack([(labels == k + 1).float() for k in range(probs.shape[0])])
    intersection = (probs * truth * valid).flatten(1).sum(1)
    union = ((probs + truth - probs * truth) * valid).flatten(1).sum(1)
    return (1 - (intersection + 1) / (union + 1)).mean()
