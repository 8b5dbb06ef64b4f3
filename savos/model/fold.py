"""Batch norms folded into the convolutions before them, for inference.

In eval mode a batch norm is a per-channel scale and shift, which the convolution before it can apply through
its own weights and bias: one kernel and one pass over the activations fewer per pair. The backbones have 53
(resnet50) and 48 (efficientnet_lite0) such pairs and nothing else normalises. The decoder has none.

Only pairs known to be adjacent are folded: consecutive children of an ``nn.Sequential`` and the named pairs of
the backbone blocks below (from their ``forward``), where nothing else reads the convolution's output.
"""

from __future__ import annotations

import itertools

from timm.layers import BatchNormAct2d

# timm exports these block classes from no public module: the one private import, capped in pyproject.toml and
# checked by tests/model/test_fold.py (every pair of both backbones folded, by count).
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual
from timm.models.efficientnet import EfficientNetFeatures
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.models.resnet import Bottleneck

# (convolution, batch norm) attribute pairs, the batch norm applied directly to the convolution's output.
_BLOCK_PAIRS: dict[type[nn.Module], tuple[tuple[str, str], ...]] = {
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    InvertedResidual: (("conv_s2d", "bn_s2d"), ("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")),
    DepthwiseSeparableConv: (("conv_s2d", "bn_s2d"), ("conv_dw", "bn1"), ("conv_pw", "bn2")),
    EfficientNetFeatures: (("conv_stem", "bn1"),),
}


def fold_batch_norms(model: nn.Module) -> int:
    """Fold, in place, each known (convolution, batch norm) pair of ``model``; returns how many were folded.

    The model must be in eval mode (a training batch norm normalises by the batch, which no weight can do).
    timm's ``BatchNormAct2d`` keeps its activation (and dropout) in place of the batch norm.
    """
    if model.training:
        raise ValueError("batch norms fold only in eval mode: call model.eval() first")
    folded = 0
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            pairs = list(itertools.pairwise(names))
        else:
            pairs = [p for cls, known in _BLOCK_PAIRS.items() if isinstance(parent, cls) for p in known]
        for conv_name, bn_name in pairs:
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and _foldable(conv, bn):
                setattr(parent, bn_name, _fold(conv, bn))
                folded += 1
    return folded


def _foldable(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> bool:
    return bn.track_running_stats and bn.running_mean is not None and bn.num_features == conv.out_channels


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Module:
    """Scale and shift ``conv`` by ``bn``; what replaces ``bn``: nothing, or a BatchNormAct2d's own tail."""
    assert bn.running_mean is not None
    assert bn.running_var is not None
    weight, bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    conv.weight, conv.bias = weight, bias
    if isinstance(bn, BatchNormAct2d):
        return nn.Sequential(bn.drop, bn.act)
    return nn.Identity()
