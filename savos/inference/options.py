"""How a :class:`~savos.inference.Predictor` runs the network: memory budgets and the device's speed-ups.

None of these change what the masks are meant to be (test-time choices that do are :class:`savos.quality.Quality`);
each ``"auto"`` is decided for the device by :meth:`EngineOptions.for_device`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch

from .passes import CPU_PASS_PIXELS, CUDA_PASS_PIXELS

Auto = Literal["auto"]

CHANNELS_LAST_BACKBONES = {"resnet50"}  # on CUDA; on the CPU channels_last is faster for both backbones


@dataclass(frozen=True)
class EngineOptions:
    """Options of a predictor's engine.

    - ``max_pixels``: frames above this many pixels go through the network downscaled (all scales alike); the
      probabilities come back at the frame's size. A 4K video costs what a 1080p one does, not an out-of-memory.
    - ``max_pass_pixels``: a step's rows (every tracked object of every video) go through the network in passes of
      at most this many input pixels, so activation memory stays bounded however many objects
      (:mod:`savos.inference.passes`); ``"auto"``: a budget measured for the device kind.
    - ``prefetch_frames``: frames decoded ahead of the network, on a thread.
    - ``channels_last``: NHWC activations, what oneDNN and tensor cores want for dense convolutions; ``"auto"``: on
      the CPU always, on CUDA for ResNet-50 only (EfficientNet's depthwise convolutions ran 3.4x slower in it on
      an H100, BENCHMARKS.md).
    - ``pin_memory``: frames copied into page-locked memory on the prefetch thread, for asynchronous uploads;
      ``"auto"``: on CUDA.
    - ``cuda_graphs``: the network step replayed from CUDA graphs (:mod:`savos.inference.graphs`); ``"auto"``: on
      CUDA. Refused on another device.
    - ``compile``: ``torch.compile`` the network (15-20 s per batch size on a GPU, then about 1.6x faster).
    - ``fold_batch_norms``: run a copy of the model with its batch norms folded into their convolutions
      (:mod:`savos.model.fold`); off: the model as given, moved to the device.
    """

    max_pixels: int | None = None
    max_pass_pixels: int | Auto = "auto"
    prefetch_frames: int = 2
    channels_last: bool | Auto = "auto"
    pin_memory: bool | Auto = "auto"
    cuda_graphs: bool | Auto = "auto"
    compile: bool = False
    fold_batch_norms: bool = True

    def __post_init__(self) -> None:
        if self.max_pass_pixels != "auto" and self.max_pass_pixels < 1:
            raise ValueError(f"max_pass_pixels must be positive, got {self.max_pass_pixels}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")
        if self.prefetch_frames < 0:
            raise ValueError(f"prefetch_frames cannot be negative, got {self.prefetch_frames}")

    def for_device(self, device: torch.device, backbone: str) -> ResolvedOptions:
        """Every ``"auto"`` decided for ``device`` and the model's ``backbone``."""
        on_cuda = device.type == "cuda"
        if self.cuda_graphs is True and not on_cuda:
            raise ValueError(f"CUDA graphs need a CUDA device, not {device}")
        return ResolvedOptions(
            max_pixels=self.max_pixels,
            max_pass_pixels=(CUDA_PASS_PIXELS if on_cuda else CPU_PASS_PIXELS)
            if self.max_pass_pixels == "auto"
            else self.max_pass_pixels,
            prefetch_frames=self.prefetch_frames,
            channels_last=(not on_cuda or backbone in CHANNELS_LAST_BACKBONES)
            if self.channels_last == "auto"
            else self.channels_last,
            pin_memory=on_cuda if self.pin_memory == "auto" else self.pin_memory,
            cuda_graphs=on_cuda if self.cuda_graphs == "auto" else self.cuda_graphs,
            compile=self.compile,
            fold_batch_norms=self.fold_batch_norms,
        )

    def with_overrides(self, **changes: object) -> EngineOptions:
        """These options with some changed (``None`` values are ignored: not given)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ResolvedOptions:
    """:class:`EngineOptions` with nothing left to decide: what a predictor runs with."""

    max_pixels: int | None
    max_pass_pixels: int
    prefetch_frames: int
    channels_last: bool
    pin_memory: bool
    cuda_graphs: bool
    compile: bool
    fold_batch_norms: bool
