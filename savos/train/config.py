"""Training hyperparameters: a frozen dataclass, saved beside every checkpoint it produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..data.vos import DAVIS2016_DEV
from ..model import ModelConfig
from .clips import DEFAULT_MIX, SOURCES

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes (paths and devices are not part of it)."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(backbone="efficientnet_lite0"))
    dev_sequences: tuple[str, ...] = DAVIS2016_DEV
    steps: int = 3000
    batch_size: int = 4
    crop: tuple[int, int] = (256, 448)
    clip_length: int = 3
    max_skip: int = 5
    mix: tuple[tuple[str, float], ...] = tuple(DEFAULT_MIX.items())
    optimizer: str = "adamw"
    lr: float = 2e-4
    # The paper's SGD: momentum 0.5; the learning rate decays polynomially (power 0.9) for both optimisers.
    momentum: float = 0.5
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if any(name not in SOURCES for name, _ in self.mix):
            raise ValueError(f"unknown clip source in mix {dict(self.mix)}; choose from {', '.join(SOURCES)}")
        if self.steps < 1 or self.batch_size < 1 or self.clip_length < 1:
            raise ValueError("steps, batch_size and clip_length must be positive")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mix"] = dict(self.mix)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        data = dict(data)
        if "model" in data:
            data["model"] = ModelConfig.from_dict(data["model"])
        for key in ("dev_sequences", "crop"):
            if key in data:
                data[key] = tuple(data[key])
        if "mix" in data:
            data["mix"] = tuple(dict(data["mix"]).items())
        return cls(**data)
