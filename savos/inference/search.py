"""A search window around each object's previous mask: a look-alike far from the object cannot take its mask.

The network sees the whole frame, so another object of the same kind (a flamingo among flamingos) can draw
probability wherever it is. An object moves a bounded distance between two frames; probability farther than
that from where it was is set to zero before soft aggregation. The window is a dilation of the previous mask
on a grid of cells, computed on the device (no wait for it, nothing read back).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The window's grain in pixels: the dilation runs on a grid this much coarser than the frame (cheap at any
# radius), so the window reaches up to this much further than asked.
CELL = 8


def within_reach(probs: torch.Tensor, previous: torch.Tensor, radius: float) -> torch.Tensor:
    """``probs (N, H, W)`` with each object's probability set to 0 farther than ``radius`` (a fraction of the
    frame's shorter side) from its previous mask, ``previous (N, H, W)`` probabilities above one half. An
    object that had no pixel on the previous frame is searched for everywhere."""
    if radius <= 0:
        raise ValueError(f"the search radius must be positive, got {radius}")
    height, width = probs.shape[-2:]
    was_there = (previous > 0.5).to(probs.dtype).unsqueeze(1)
    cells = F.max_pool2d(was_there, CELL, CELL, ceil_mode=True)
    reach = max(1, math.ceil(radius * min(height, width) / CELL))
    window = F.max_pool2d(cells, 2 * reach + 1, stride=1, padding=reach)
    window = F.interpolate(window, scale_factor=CELL, mode="nearest")[..., :height, :width]
    absent = 1 - cells.amax(dim=(1, 2, 3), keepdim=True)
    return probs * torch.maximum(window, absent)[:, 0]
