"""Batch norms folded into their convolutions: the same network, fewer kernels."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from savos.model import SAVOS, ModelConfig, build_savos
from savos.model.fold import fold_batch_norms
from tests.conftest import TINY


def _with_trained_statistics(model: SAVOS) -> SAVOS:
    """Batch norms with statistics and affine parameters far from the identity a fresh one has."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(channels, generator=generator) * 2 + 0.1)
            module.weight.data.copy_(torch.randn(channels, generator=generator))
            module.bias.data.copy_(torch.randn(channels, generator=generator) * 0.3)
    return model.eval()


@pytest.mark.parametrize(
    ("config", "pairs"),
    [(TINY, 48), (ModelConfig(backbone="resnet50", decoder_channels=16, attention_reduction=4), 53)],
    ids=["efficientnet_lite0", "resnet50"],
)
def test_every_batch_norm_folds_and_the_network_computes_the_same(config: ModelConfig, pairs: int) -> None:
    torch.manual_seed(0)
    model = _with_trained_statistics(build_savos(config, backbone_weights="none"))
    folded = copy.deepcopy(model)
    assert fold_batch_norms(folded) == pairs
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    image, reference, guidance = torch.randn(2, 3, 96, 128), torch.rand(2, 1, 96, 128), torch.rand(2, 1, 96, 128)
    with torch.no_grad():
        expected = model(image, reference, image, guidance)
        actual = folded(image, reference, image, guidance)
    # Folding reassociates fp32 products through 53 convolutions (resnet50): on CPUs without AVX-512 one logit
    # of 3,072 moved by 4e-4. A fold that is wrong moves logits by whole units.
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-3)


def test_a_training_model_is_refused(tiny_model: SAVOS) -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(tiny_model.train())
