"""Multi-object soft aggregation (the paper's equation, from RGMP)."""

from __future__ import annotations

import numpy as np
import torch

# Probabilities are clamped to [EPS, 1 - EPS] so that the odds p/(1-p) stay finite and non-zero.
EPS = 1e-7


def soft_aggregate(probs: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Combine per-object foreground probabilities, each estimated as if its object were alone.

    ``probs``: ``(M, ...)`` with p̂_m for objects m = 1..M. The background estimate is p̂_0 = Π_m (1 − p̂_m). Then

        p_m = (p̂_m / (1 − p̂_m)) / Σ_{j=0..M} (p̂_j / (1 − p̂_j)),

    so the result ``(M + 1, ...)`` (background first) sums to one at every pixel. Computed in float32.
    """
    p = probs.float().clamp(eps, 1 - eps)
    background = torch.prod(1 - p, dim=0, keepdim=True).clamp(eps, 1 - eps)
    odds = torch.cat([background, p], dim=0)
    odds = odds / (1 - odds)
    return odds / odds.sum(dim=0, keepdim=True)


def probs_to_ids(obj_ids: list[int], probs: torch.Tensor) -> np.ndarray:
    """Label map ``(H, W)`` int32 from aggregated object probabilities ``(M, H, W)`` (background is the rest).

    Each pixel takes the most probable of background (id 0) and the objects. The ids are looked up where the
    probabilities are (on the GPU, say), so only the int32 map crosses to the host.
    """
    if not obj_ids:
        return np.zeros(tuple(probs.shape[-2:]), dtype=np.int32)
    return _ids(obj_ids, probs).cpu().numpy()


def _ids(obj_ids: list[int], probs: torch.Tensor) -> torch.Tensor:
    """The label map where ``probs`` are, int32."""
    probs = probs.float()
    best = (1 - probs.sum(dim=0)).clamp_min(0)  # the background's probability
    ids = torch.zeros(best.shape, dtype=torch.int32, device=probs.device)
    # A running maximum, object by object (ties keep the earlier: background first): the same as an argmax
    # over (background, objects), several times faster on the CPU than torch's strided argmax.
    for obj_id, prob in zip(obj_ids, probs, strict=True):
        better = prob > best
        best = torch.where(better, prob, best)
        ids.masked_fill_(better, obj_id)
    return ids


def labels_and_scores(obj_ids: list[int], probs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """:func:`probs_to_ids` and, per object, its mean probability over the pixels it was given (0 where it
    has none): ``(labels (H, W) int32, scores (M,) float32)``. Computed where ``probs`` are; only the label map
    and M scores cross to the host."""
    labels, scores = device_labels_and_scores(obj_ids, probs)
    return labels.cpu().numpy(), scores.cpu().numpy()


def device_labels_and_scores(
    obj_ids: list[int], probs: torch.Tensor, *, fused: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`labels_and_scores` left where ``probs`` are. Nothing is uploaded (the ids are Python numbers), so
    on a GPU this queues work without waiting for it.

    ``fused`` (default: on a GPU): one argmax for the label map and one masked reduction for all the scores, a
    dozen kernels whatever the number of objects; a GPU step launches this for every video, and the launches
    are host time. Otherwise a running maximum and a score per object (faster on a CPU, see :func:`_ids`).
    """
    if not obj_ids:
        return torch.zeros(tuple(probs.shape[-2:]), dtype=torch.int32, device=probs.device), torch.zeros(
            0, dtype=torch.float32, device=probs.device
        )
    if fused if fused is not None else probs.device.type == "cuda":
        probs = probs.float()
        background = (1 - probs.sum(dim=0, keepdim=True)).clamp_min(0)
        slot = torch.cat([background, probs]).argmax(dim=0)  # 0: background; ties go to the first, as in _ids
        given = slot == torch.arange(1, len(obj_ids) + 1, device=probs.device)[:, None, None]  # (M, H, W)
        scores = (probs * given).sum(dim=(1, 2)) / given.sum(dim=(1, 2)).clamp_min(1)
        return _slot_ids(slot, obj_ids), scores
    labels = _ids(obj_ids, probs)
    per_object = []
    for obj_id, prob in zip(obj_ids, probs, strict=True):
        given = labels == obj_id
        per_object.append((prob.float() * given).sum() / given.sum().clamp_min(1))
    return labels, torch.stack(per_object)


def _slot_ids(slot: torch.Tensor, obj_ids: list[int]) -> torch.Tensor:
    """Object ids from slots (0 background, i for ``obj_ids[i - 1]``), int32; no copy when ids are 1..M."""
    if obj_ids == list(range(1, len(obj_ids) + 1)):
        return slot.to(torch.int32)
    labels = torch.zeros(slot.shape, dtype=torch.int32, device=slot.device)
    for index, obj_id in enumerate(obj_ids, start=1):
        labels.masked_fill_(slot == index, obj_id)
    return labels
