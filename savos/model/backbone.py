"""Encoders that take RGB + mask (4 channels) and return the features the decoder needs.

Both branches of SAVOS (reference and target) run through the same encoder instance, so the weights are
shared by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import timm
import torch
from torch import nn
from torchvision.models import resnet50

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class EncoderFeatures:
    """Multi-level features of one batch. Shapes for a padded input of (N, 4, H, W):
    res2 (N, C2, H/4, W/4), res3 (N, C3, H/8, W/8), res4 (N, C4, H/16, W/16), top (N, C5, H/32, W/32)."""

    res2: torch.Tensor
    res3: torch.Tensor
    res4: torch.Tensor
    top: torch.Tensor


class Encoder(nn.Module):
    """Base class: ``channels`` are (C2, C3, C4, C5); ``stride`` is the total downsampling of ``top``."""

    channels: tuple[int, int, int, int]
    stride = 32

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        raise NotImplementedError


def widen_first_conv(conv: nn.Conv2d, rgb_weight: torch.Tensor | None = None) -> nn.Conv2d:
    """Return a copy of ``conv`` that takes one more input channel (the mask).

    The RGB filters keep ``rgb_weight`` (pretrained values) when given, else the conv's own; the mask filters
    keep their fresh random initialisation.
    """
    wide = type(conv)(
        conv.in_channels + 1,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        source = conv.weight if rgb_weight is None else rgb_weight
        wide.weight[:, : conv.in_channels].copy_(source)
        if conv.bias is not None and wide.bias is not None:
            wide.bias.copy_(conv.bias)
    return wide


class ResNet50Encoder(Encoder):
    """torchvision ResNet-50 (the paper's backbone), first conv widened to RGB + mask."""

    channels = (256, 512, 1024, 2048)

    def __init__(self, rgb_state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        net = resnet50(weights=None)
        if rgb_state_dict is not None:
            net.load_state_dict(rgb_state_dict)
        net.conv1 = widen_first_conv(net.conv1)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        res2 = self.layer1(self.stem(x))
        res3 = self.layer2(res2)
        res4 = self.layer3(res3)
        return EncoderFeatures(res2=res2, res3=res3, res4=res4, top=self.layer4(res4))


class EfficientNetLiteEncoder(Encoder):
    """timm ``tf_efficientnet_<variant>`` feature pyramid (strides 4, 8, 16, 32), stem widened to RGB + mask."""

    CHANNELS: ClassVar[dict[str, tuple[int, int, int, int]]] = {
        "lite0": (24, 40, 112, 320),
        "lite2": (24, 48, 120, 352),
    }

    def __init__(self, variant: str = "lite0", rgb_state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if variant not in self.CHANNELS:
            raise ValueError(f"unknown efficientnet variant {variant!r}; choose one of {sorted(self.CHANNELS)}")
        self.channels = self.CHANNELS[variant]
        self.body = timm.create_model(
            f"tf_efficientnet_{variant}", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)
        )
        if rgb_state_dict is not None:
            own = self.body.state_dict()
            self.body.load_state_dict({k: rgb_state_dict[k] for k in own})
        stem = self.body.conv_stem
        assert isinstance(stem, nn.Conv2d)
        self.body.conv_stem = widen_first_conv(stem)

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        res2, res3, res4, top = self.body(x)
        return EncoderFeatures(res2=res2, res3=res3, res4=res4, top=top)
