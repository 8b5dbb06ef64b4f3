from __future__ import annotations

import logging

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision.models import resnet50

from savos.model import ModelConfig, build_savos
from savos.model.backbone import IMAGENET_MEAN, IMAGENET_STD
from savos.model.weights import efficientnet_lite_state_dict, resnet50_state_dict
from tests.conftest import shared_data


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
@pytest.mark.parametrize(("sequence", "imagenet_class"), [("flamingo", 130), ("bear", 294)])
def test_efficientnet_lite_imagenet_weights_rank_the_davis_animal_first(
    variant: str, sequence: str, imagenet_class: int
) -> None:
    """The shipped weights, mapped onto timm's model by position, classify DAVIS frames as their ImageNet class
    (with the ImageNet normalisation the encoder uses): random or misplaced weights would not."""
    frame = shared_data(f"davis2016-train/JPEGImages/480p/{sequence}/00010.jpg")
    classifier = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False).eval()
    classifier.load_state_dict(efficientnet_lite_state_dict(variant, "imagenet"))
    pixels = np.array(Image.open(frame).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
    x = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255).unsqueeze(0)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        probs = classifier(x).softmax(dim=1)[0]
    assert int(probs.argmax()) == imagenet_class
    assert float(probs[imagenet_class]) > 0.5


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_efficientnet_stem_keeps_rgb_filters_and_adds_random_mask_filters(variant: str) -> None:
    pretrained = efficientnet_lite_state_dict(variant, "imagenet")
    assert pretrained is not None
    model = build_savos(ModelConfig(backbone=f"efficientnet_{variant}"), backbone_weights="imagenet")
    stem = model.encoder.body.conv_stem.weight
    assert stem.shape[1] == 4
    torch.testing.assert_close(stem[:, :3], pretrained["conv_stem.weight"])
    assert stem[:, 3].abs().sum() > 0  # freshly initialised, not zeros
    torch.testing.assert_close(model.encoder.body.blocks[3][0].conv_pw.weight, pretrained["blocks.3.0.conv_pw.weight"])


def test_resnet50_loads_a_local_weights_file(tmp_path) -> None:
    torch.manual_seed(1)
    reference = resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50.pth"
    torch.save(reference, path)
    model = build_savos(ModelConfig(backbone="resnet50"), backbone_weights=path)
    torch.testing.assert_close(model.encoder.stem[0].weight[:, :3], reference["conv1.weight"])
    torch.testing.assert_close(model.encoder.layer4[2].conv3.weight, reference["layer4.2.conv3.weight"])


def test_resnet50_imagenet_reads_the_torch_hub_cache_without_network(tmp_path, monkeypatch) -> None:
    from torchvision.models import ResNet50_Weights

    torch.manual_seed(2)
    reference = resnet50(weights=None).state_dict()
    cached = tmp_path / "hub" / "checkpoints" / ResNet50_Weights.IMAGENET1K_V2.url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(reference, cached)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = resnet50_state_dict("imagenet")
    assert state is not None
    torch.testing.assert_close(state["fc.weight"], reference["fc.weight"])


def test_missing_weights_file_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth: backbone weights file not found"):
        resnet50_state_dict(tmp_path / "nope.pth")


def test_random_backbone_is_logged(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="savos.model.weights"):
        assert resnet50_state_dict("none") is None
    assert "random initialisation" in caplog.text
