from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from savos.model import ModelConfig, build_savos
from savos.model.gcb import GlobalConvBlock
from tests.conftest import TINY


@pytest.mark.parametrize("backbone", ["resnet50", "efficientnet_lite0"])
@pytest.mark.parametrize(("height", "width"), [(481, 853), (97, 131)])
def test_output_is_quarter_size_for_odd_inputs(backbone: str, height: int, width: int) -> None:
    model = build_savos(ModelConfig(backbone=backbone, decoder_channels=32), backbone_weights="none").eval()
    image, mask = torch.rand(2, 3, height, width), torch.rand(2, 1, height, width)
    with torch.inference_mode():
        logits = model(image, mask, image, mask)
    assert logits.shape == (2, 2, math.ceil(height / 4), math.ceil(width / 4))


def test_reference_and_target_branches_share_weights(tiny_model: nn.Module) -> None:
    image, mask = torch.rand(1, 3, 64, 96), torch.rand(1, 1, 64, 96)
    with torch.inference_mode():
        reference_top = tiny_model.encode_reference(image, mask)
        target_top = tiny_model.encode_target(image, mask).top
    torch.testing.assert_close(reference_top, target_top)
    # One encoder, no second copy of its parameters anywhere.
    encoders = [m for m in tiny_model.modules() if type(m).__name__.endswith("Encoder")]
    assert len(encoders) == 1


def test_batched_objects_equal_one_at_a_time(tiny_model: nn.Module) -> None:
    """The engine sends all objects of a frame as one batch: in eval mode that must not change any output."""
    image, mask = torch.rand(3, 3, 70, 90), torch.rand(3, 1, 70, 90)
    with torch.inference_mode():
        batched = tiny_model(image, mask, image.flip(-1), mask.flip(-1))
        single = torch.cat(
            [
                tiny_model(image[i : i + 1], mask[i : i + 1], image[i : i + 1].flip(-1), mask[i : i + 1].flip(-1))
                for i in range(3)
            ]
        )
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_global_conv_block_sees_a_k_by_k_square_and_has_no_batch_norm() -> None:
    torch.manual_seed(0)
    block = GlobalConvBlock(1, 1, kernel_size=5)
    for conv in block.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.constant_(conv.weight, 1.0)
            nn.init.zeros_(conv.bias)
    impulse = torch.zeros(1, 1, 11, 11)
    impulse[0, 0, 5, 5] = 1
    with torch.no_grad():
        response = block(impulse)[0, 0]
    nonzero = response.nonzero()
    assert nonzero[:, 0].min() == 3
    assert nonzero[:, 0].max() == 7
    assert nonzero[:, 1].min() == 3
    assert nonzero[:, 1].max() == 7
    assert len(nonzero) == 25
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in block.modules())


def test_decoder_has_three_attention_modules_on_res4_res3_res2() -> None:
    model = build_savos(TINY, backbone_weights="none")
    c2, c3, c4, _ = model.encoder.channels
    assert model.att4.skip[0].in_channels == c4
    assert model.att3.skip[0].in_channels == c3
    assert model.att2.skip[0].in_channels == c2
    assert model.head.out_channels == 2


def test_config_rejects_unknown_backbone_and_keys() -> None:
    with pytest.raises(ValueError, match="unknown backbone"):
        ModelConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        ModelConfig.from_dict({"backbone": "resnet50", "colour": 1})
