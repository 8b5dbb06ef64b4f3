"""SAVOS network modules and their builder."""

from __future__ import annotations

from .backbone import EfficientNetLiteEncoder, Encoder, EncoderFeatures, ResNet50Encoder
from .config import BACKBONES, ModelConfig
from .savos import SAVOS
from .weights import WeightsSource, efficientnet_lite_state_dict, resnet50_state_dict

__all__ = ["BACKBONES", "SAVOS", "EncoderFeatures", "ModelConfig", "build_savos"]


def build_encoder(backbone: str, weights: WeightsSource = "imagenet") -> Encoder:
    """The 4-channel encoder for ``backbone``, its RGB filters from ``weights`` (see :mod:`.weights`)."""
    if backbone == "resnet50":
        return ResNet50Encoder(resnet50_state_dict(weights))
    if backbone.startswith("efficientnet_lite") and backbone in BACKBONES:
        variant = backbone.removeprefix("efficientnet_")
        return EfficientNetLiteEncoder(variant, efficientnet_lite_state_dict(variant, weights))
    raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def build_savos(config: ModelConfig | None = None, *, backbone_weights: WeightsSource = "imagenet") -> SAVOS:
    """A SAVOS network. Decoder weights are always fresh; ``backbone_weights`` seeds the encoder."""
    config = config or ModelConfig()
    return SAVOS(build_encoder(config.backbone, backbone_weights), config)
