"""The architecture hyperparameters that a checkpoint must carry to be rebuilt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

BACKBONES = ("resnet50", "efficientnet_lite0", "efficientnet_lite2")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a SAVOS network.

    Only what changes tensor shapes lives here: where backbone weights come from is a construction
    detail (see :func:`savos.model.build_savos`), not part of the architecture.
    """

    backbone: str = "resnet50"
    decoder_channels: int = 256
    gcb_kernel: int = 7
    attention_reduction: int = 16

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.gcb_kernel % 2 != 1:
            raise ValueError(f"gcb_kernel must be odd to keep the feature size, got {self.gcb_kernel}")
        if self.decoder_channels % self.attention_reduction != 0:
            raise ValueError("decoder_channels must be divisible by attention_reduction")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)
