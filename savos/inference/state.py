"""Per-video propagation state."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from .backward import BackwardFrame

# A frame: (H, W, 3) uint8 RGB, as a numpy array or a torch tensor (pinned host memory, or already on the
# device, e.g. decoded there).
FrameInput = np.ndarray | torch.Tensor
# How the network sees a frame: at a scale of the frame (times the pixel budget), mirrored left-right or not.
View = tuple[float, bool]


@dataclass
class VideoState:
    """Everything the engine keeps for one video. Its size does not grow with the number of frames.

    ``obj_ids`` are the caller's ids; an object's slot (``obj_idx``) is its position in that list, and
    indexes the first dimension of ``reference`` and ``guidance``.
    """

    frames: Iterator[FrameInput]
    """Remaining frames, ``(H, W, 3)`` uint8 RGB, consumed as propagation advances."""
    source: Iterable[FrameInput] | None = None
    """What the frames came from; read again from its start by ``Predictor.reset_state`` where it can be (a frame
    folder or a video file, a list), not where it was a one-pass iterator."""
    prompts: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)
    """frame_idx -> obj_id -> ``(H, W)`` bool mask, for frames not reached yet."""
    obj_ids: list[int] = field(default_factory=list)
    reference: dict[View, torch.Tensor] = field(default_factory=dict)
    """(scale, flipped) -> reference-branch top features ``(M, C5, h, w)``, computed once per object."""
    guidance: torch.Tensor | None = None
    """Aggregated probabilities of the previous frame ``(M, 1, H, W)``: the target branch's mask input."""
    size: tuple[int, int] | None = None
    next_frame_idx: int = 0
    decoder: nn.Module | None = None
    """This video's online-adapted decoder (:mod:`savos.train.online`); None: the model's own."""
    adapted_on: list[tuple[np.ndarray, dict[int, np.ndarray]]] = field(default_factory=list)
    """The frames its decoder was fine-tuned on, at the size the network saw them: ``(H, W, 3)`` uint8 pixels and
    ``obj_id -> (H, W)`` bool masks (empty without online adaptation)."""
    backward: dict[int, BackwardFrame] = field(default_factory=dict)
    """frame_idx -> what backward propagation gave that frame, until the forward pass reaches it
    (:meth:`Predictor.propagate_backward <savos.inference.Predictor.propagate_backward>`; empty without it)."""

    def obj_idx(self, obj_id: int) -> int:
        return self.obj_ids.index(obj_id)

    @property
    def rereadable(self) -> bool:
        """Whether the frames can be read again from their start (a frame folder, a video file, a list): a
        one-pass iterator cannot be."""
        return self.source is not None and iter(self.source) is not self.source

    def reread(self, indices: Iterable[int]) -> dict[int, FrameInput]:
        """The frames at ``indices``, read again from the source (:attr:`rereadable` must hold)."""
        wanted = set(indices)
        assert self.source is not None
        assert self.rereadable
        found: dict[int, FrameInput] = {}
        for frame_idx, frame in enumerate(self.source):
            if len(found) == len(wanted):
                break
            if frame_idx in wanted:
                found[frame_idx] = frame
        return found

    def retained_bytes(self) -> int:
        """Bytes held in tensors, pending prompt masks and the frames adapted on (what a long video must not make
        grow: the last grow with annotated frames only)."""
        tensors = list(self.reference.values()) + ([self.guidance] if self.guidance is not None else [])
        if self.decoder is not None:
            tensors += list(self.decoder.parameters())
        held = sum(t.numel() * t.element_size() for t in tensors)
        held += sum(m.nbytes for masks in self.prompts.values() for m in masks.values())
        return held + sum(f.nbytes + sum(m.nbytes for m in ms.values()) for f, ms in self.adapted_on)
