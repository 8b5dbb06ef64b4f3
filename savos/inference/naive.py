"""The naive reference path, for the benchmark only: the paper's inference written plainly.

Every frame, every object goes through the network on its own (batch of one), and both branches run: the
reference branch recomputes frame 0 with the object's first mask each time. fp32, no prefetching. It computes the
same function as :class:`~savos.inference.Predictor` (one scale, first-frame masks) and so checks it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from savos.model import SAVOS

from .aggregate import soft_aggregate


@torch.inference_mode()
def naive_propagate(
    model: SAVOS, frames: Sequence[np.ndarray], first_masks: dict[int, np.ndarray]
) -> Iterator[tuple[int, list[int], torch.Tensor]]:
    """Yield ``(frame_idx, obj_ids, probs (M, H, W))`` like :meth:`Predictor.propagate`, on the CPU in fp32."""
    model = model.float().eval()
    obj_ids = sorted(first_masks)
    reference = _tensor(frames[0])
    ref_masks = [torch.from_numpy(first_masks[o]).float()[None, None] for o in obj_ids]
    probs = soft_aggregate(torch.cat(ref_masks)[:, 0])[1:]
    yield 0, obj_ids, probs
    for t in range(1, len(frames)):
        image = _tensor(frames[t])
        height, width = image.shape[-2:]
        alone = []
        for m in range(len(obj_ids)):
            ref_top = model.encode_reference(reference, ref_masks[m])  # recomputed, every frame
            target = model.encode_target(image, probs[m][None, None])
            logits = model.decode(ref_top, target, (height, width))
            fg = torch.softmax(logits, dim=1)[:, 1:]
            fg = F.interpolate(fg, scale_factor=4, mode="bilinear", align_corners=False)[..., :height, :width]
            alone.append(fg[0, 0])
        probs = soft_aggregate(torch.stack(alone))[1:]
        yield t, obj_ids, probs


def _tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float() / 255
