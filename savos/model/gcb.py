"""Global convolution block (Peng et al., "Large Kernel Matters"), as SAVOS uses it: no batch norm."""

from __future__ import annotations

import torch
from torch import nn


class GlobalConvBlock(nn.Module):
    """Two separable large-kernel paths, k×1 then 1×k and 1×k then k×1, summed.

    A k×k receptive field at the cost of 2k weights per channel pair, so the fused reference+target top
    features see most of a 480p frame at stride 32. ``(N, C_in, h, w) -> (N, C_out, h, w)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7) -> None:
        super().__init__()
        k, p = kernel_size, kernel_size // 2
        self.left = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (k, 1), padding=(p, 0)),
            nn.Conv2d(out_channels, out_channels, (1, k), padding=(0, p)),
        )
        self.right = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (1, k), padding=(0, p)),
            nn.Conv2d(out_channels, out_channels, (k, 1), padding=(p, 0)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) + self.right(x)
