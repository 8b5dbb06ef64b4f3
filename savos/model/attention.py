"""The decoder's attention module: skip-feature refinement with CBAM channel and spatial attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared MLP over avg- and max-pooled descriptors, summed, then a sigmoid.

    ``(N, C, H, W) -> (N, C, 1, 1)`` weights in (0, 1).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Global pools as plain reductions: adaptive_max_pool2d(x, 1) computes the same but was 16% of the GPU
        # time of a batched resnet50 step on an H100 (BENCHMARKS.md).
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        peak = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a 7×7 conv over the channel-wise mean and max. ``(N, C, H, W) -> (N, 1, H, W)``."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class AttentionModule(nn.Module):
    """Fuse a target-branch skip feature F1 with the coarser decoder map F2.

    F1 goes through two 3×3 convs (with ReLU) to the decoder width; F2 is upsampled to F1's size and **added**;
    the sum is reweighted by channel attention, then by spatial attention.

    The paper does not say how F2 joins. We add it *before* the attention, so that the attention weights are
    computed from both the object evidence carried by F2 (the decoder knows which object it segments; the skip
    feature barely does) and the detail of F1. Addition rather than concatenation keeps the width fixed, as in
    RGMP's refinement module, which SAVOS builds on.

    ``f1 (N, C_skip, H, W), f2 (N, C, H/2, W/2) -> (N, C, H, W)``.
    """

    def __init__(self, skip_channels: int, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.skip = nn.Sequential(
            nn.Conv2d(skip_channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention()

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        x = self.skip(f1) + F.interpolate(f2, size=f1.shape[-2:], mode="bilinear", align_corners=False)
        x = x * self.channel(x)
        return x * self.spatial(x)
