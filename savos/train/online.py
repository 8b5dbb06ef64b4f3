"""Online adaptation (the paper's "+OL"): a video's own decoder, fine-tuned on its annotated frames.

Before a video is propagated, a copy of the decoder is trained for a few steps on clips synthesised from the
annotated frame alone (simulated affine motion and lucid dreams, :mod:`savos.train.clips`), every object of the
frame together through soft aggregation, with the recurrent loss the network was trained with. A later frame
annotated in full (a person's fix) makes the engine train a copy of the video's decoder further, on that frame
and the earlier ones, each clip drawn from one of them at random.
The encoder is frozen and shared (its batch norms keep their statistics), so only the decoder differs between
videos: the lock-step engine runs the encoder once for all videos of a step and each video's rows through its
own decoder.

Everything random comes from ``seed``, never from the global generators: the same frame and masks give the
same decoder whatever ran before, so videos give the same masks alone, in any order, or batched together.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..model import SAVOS
from ..model.backbone import EncoderFeatures
from ..quality import OnlineAdaptation
from .clips import ClipSampler
from .recurrent import clip_loss, collate

# The crop's short side is a multiple of this (the encoder's stride): no padding inside the crops.
_STRIDE = 32


class AnnotatedFrames:
    """A video's annotated frames in memory, ``[(image (H, W, 3) uint8, labels (H, W)), ...]``, read the way
    :class:`~savos.data.vos.Sequence` is by the clip sampler."""

    def __init__(self, frames: Sequence[tuple[np.ndarray, np.ndarray]], name: str = "annotated-frames") -> None:
        if not frames:
            raise ValueError("no annotated frame to adapt on")
        for image, labels in frames:
            if image.shape[:2] != labels.shape:
                raise ValueError(f"labels {labels.shape} do not fit the frame {image.shape[:2]}")
        self.name = name
        self._frames = list(frames)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def annotated(self) -> list[int]:
        return list(range(len(self._frames)))

    def image(self, frame_idx: int) -> np.ndarray:
        return self._frames[frame_idx][0]

    def labels(self, frame_idx: int) -> np.ndarray:
        return self._frames[frame_idx][1]


class _FrozenEncoder(nn.Module):
    """The model's encoder (no gradients, the predictor's precision) with a trainable decoder behind it."""

    def __init__(
        self,
        model: SAVOS,
        decoder: nn.Module,
        autocast: Callable[[], contextlib.AbstractContextManager[Any]],
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self._model, self._autocast = model, autocast  # not registered: never trained, never moved

    def encode_reference(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self._autocast():
            return self._model.encode_reference(image, mask).float()

    def encode_target(self, image: torch.Tensor, guidance: torch.Tensor) -> EncoderFeatures:
        with torch.no_grad(), self._autocast():
            f = self._model.encode_target(image, guidance)
        return EncoderFeatures(res2=f.res2.float(), res3=f.res3.float(), res4=f.res4.float(), top=f.top.float())

    def decode(self, reference_top: torch.Tensor, target: EncoderFeatures, size: tuple[int, int]) -> torch.Tensor:
        return self.decoder(reference_top, target, size)


def crop_for(frame_size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """``crop`` turned to the frame's orientation and shrunk (aspect kept, stride multiples) to fit in it."""
    h, w = frame_size
    ch, cw = (max(crop), min(crop)) if h > w else (min(crop), max(crop))
    shrink = min(1.0, h / ch, w / cw)
    return (max(_STRIDE, int(ch * shrink) // _STRIDE * _STRIDE), max(_STRIDE, int(cw * shrink) // _STRIDE * _STRIDE))


def adapt_decoder(
    model: SAVOS,
    decoder: nn.Module,
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    config: OnlineAdaptation,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> nn.Module:
    """A fine-tuned fp32 copy of ``decoder`` (``model``'s, or one like it), for a video whose annotated frames
    are ``frames``: ``(image (H, W, 3) uint8, labels (H, W))`` pairs, the same object id meaning the same object
    in each (0 background, 255 void), every object of the video at that point labelled. ``model`` and
    ``decoder`` are left untouched."""
    # Callers may be in inference mode (the engine is): tensors made there could not be trained.
    with torch.inference_mode(False), torch.enable_grad():
        return _adapt(model, decoder, frames, config, autocast)


def _adapt(
    model: SAVOS,
    decoder: nn.Module,
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    config: OnlineAdaptation,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]],
) -> nn.Module:
    device = next(decoder.parameters()).device
    adapted = copy.deepcopy(decoder).float().train()
    for parameter in adapted.parameters():
        parameter.requires_grad_(True)
    network = _FrozenEncoder(model, adapted, autocast)
    sampler = ClipSampler(
        [AnnotatedFrames(frames)],
        size=crop_for(frames[0][1].shape, config.crop),
        length=config.clip_length,
        mix=dict(config.mix),
        max_objects=config.max_objects,
    )
    optimizer = torch.optim.AdamW(adapted.parameters(), lr=config.lr, weight_decay=0.0)
    rng = np.random.default_rng(config.seed)
    for _ in range(config.steps):
        batch = collate([sampler.sample(rng) for _ in range(config.batch_size)]).to(device)
        loss = clip_loss(network, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    adapted.eval()
    for parameter in adapted.parameters():
        parameter.requires_grad_(False)
    return adapted
