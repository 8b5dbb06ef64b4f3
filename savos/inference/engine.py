"""The propagation engine: first-frame (or sparse) masks in, per-frame object probabilities out.

Usage, in the style of SAM 2::

    predictor = Predictor(model, device="auto")
    state = predictor.init_state(frames)                # any iterable of (H, W, 3) uint8 RGB frames
    predictor.add_mask(state, frame_idx=0, obj_id=1, mask=first_mask)
    for frame_idx, obj_ids, probs in predictor.propagate(state):
        ids = probs_to_ids(obj_ids, probs)               # (H, W) object ids
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..model import SAVOS
from .aggregate import soft_aggregate
from .prefetch import prefetch
from .state import VideoState

PAPER_SCALES = (0.5, 0.75, 1.0)
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is available")
    return resolved


class Predictor:
    """Holds one model on one device; propagates any number of videos, one :class:`VideoState` each.

    Per frame, every tracked object goes through the network in one batch: the frame is shared, each object
    brings its own guidance (previous aggregated probabilities) and its cached reference features. Objects
    are then combined by soft aggregation, whose output is the next frame's guidance (never binarised).

    An annotation at a frame wins on that frame: a new object joins with its mask, an existing object's
    probabilities (and so its next guidance) are reset to the mask, and the other objects are cleared
    under the annotated pixels. An object's reference is the frame and mask of its first annotation.
    """

    def __init__(
        self,
        model: SAVOS,
        *,
        device: str | torch.device = "auto",
        scales: Sequence[float] = (1.0,),
        precision: str = "bf16",
        prefetch_frames: int = 2,
        max_pixels: int | None = None,
    ) -> None:
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"scales must be positive, got {list(scales)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.scales = tuple(float(s) for s in scales)
        # Autocast only on CUDA; CPU inference stays fp32.
        self.dtype = PRECISIONS[precision] if self.device.type == "cuda" else torch.float32
        self.prefetch_frames = prefetch_frames
        # Frames above this many pixels go through the network downscaled (all scales shrink alike); the
        # probabilities come back at the frame's size. A 4K video costs what a 1080p one does, not an OOM.
        self.max_pixels = max_pixels

    def init_state(self, frames: Iterable[np.ndarray]) -> VideoState:
        """A new video. ``frames`` are read lazily (and a few ahead) during :meth:`propagate`."""
        return VideoState(frames=prefetch(frames, self.prefetch_frames))

    def add_mask(self, state: VideoState, frame_idx: int, obj_id: int, mask: np.ndarray) -> None:
        """Annotate ``obj_id`` at ``frame_idx`` with a boolean ``(H, W)`` mask (not yet propagated past)."""
        if obj_id <= 0:
            raise ValueError(f"obj_id must be a positive integer (0 is background), got {obj_id}")
        if frame_idx < state.next_frame_idx:
            raise ValueError(
                f"frame {frame_idx} was already propagated; annotate frames ahead of {state.next_frame_idx}"
            )
        mask = np.asarray(mask).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f"mask for object {obj_id} at frame {frame_idx} must be (H, W), got {mask.shape}")
        if not mask.any():
            raise ValueError(f"mask for object {obj_id} at frame {frame_idx} is empty")
        state.prompts.setdefault(frame_idx, {})[obj_id] = mask

    def propagate(self, state: VideoState) -> Iterator[tuple[int, list[int], torch.Tensor]]:
        """Yield ``(frame_idx, obj_ids, probs)`` for every frame in order.

        ``probs`` is ``(M, H, W)`` float32 on the predictor's device: the aggregated probability of each
        object in ``obj_ids`` (the background is ``1 - probs.sum(0)``). Objects appear from the frame of their
        first annotation on; frames before any annotation yield ``M = 0``.
        """
        for frame in state.frames:
            frame_idx = state.next_frame_idx
            probs = self._step(state, frame_idx, frame)
            state.next_frame_idx += 1
            yield frame_idx, list(state.obj_ids), probs
        if state.prompts:
            late = sorted(state.prompts)
            raise ValueError(f"annotations for frames {late} lie past the last frame ({state.next_frame_idx - 1})")

    @torch.inference_mode()
    def _step(self, state: VideoState, frame_idx: int, frame: np.ndarray) -> torch.Tensor:
        image = self._to_tensor(frame)
        size = (image.shape[-2], image.shape[-1])
        if state.size is None:
            state.size = size
        elif size != state.size:
            raise ValueError(
                f"frame {frame_idx} is {size[1]}x{size[0]}, the video's first frame {state.size[1]}x{state.size[0]}"
            )
        prompts = {
            oid: self._prompt_tensor(m, size, frame_idx, oid) for oid, m in state.prompts.pop(frame_idx, {}).items()
        }

        tracked = [i for i, oid in enumerate(state.obj_ids) if oid not in prompts]
        predicted = self._predict(state, image, tracked) if tracked else None
        new_ids = sorted(oid for oid in prompts if oid not in state.obj_ids)
        if new_ids:
            self._add_references(state, image, torch.stack([prompts[oid] for oid in new_ids]))
            state.obj_ids.extend(new_ids)

        fg = torch.zeros((len(state.obj_ids), *size), device=self.device)
        if predicted is not None:
            fg[tracked] = predicted
        if prompts:
            annotated = torch.stack(list(prompts.values()))
            fg[tracked] *= 1 - annotated.amax(dim=0)
            fg[[state.obj_idx(oid) for oid in prompts]] = annotated
        if not state.obj_ids:
            return fg
        probs = soft_aggregate(fg)[1:]
        state.guidance = probs.unsqueeze(1)
        return probs

    def _predict(self, state: VideoState, image: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """Foreground probability ``(len(slots), H, W)`` of each object as if alone, averaged over scales."""
        assert state.guidance is not None
        index = torch.as_tensor(slots, device=self.device)
        guidance = state.guidance.index_select(0, index)
        size = image.shape[-2:]
        total = torch.zeros((len(slots), *size), device=self.device)
        for scale in self.scales:
            net = scale * self._budget(image)
            img, guide = _rescale(image, net), _rescale(guidance, net)
            reference = state.reference[scale].index_select(0, index)
            with self._autocast():
                target = self.model.encode_target(img.expand(len(slots), -1, -1, -1), guide)
                logits = self.model.decode(reference, target, (img.shape[-2], img.shape[-1]))
            probs = torch.softmax(logits.float(), dim=1)[:, 1:]
            probs = F.interpolate(probs, scale_factor=4, mode="bilinear", align_corners=False)
            probs = probs[..., : img.shape[-2], : img.shape[-1]]
            if probs.shape[-2:] != size:
                probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
            total += probs[:, 0]
        return total / len(self.scales)

    def _add_references(self, state: VideoState, image: torch.Tensor, masks: torch.Tensor) -> None:
        """Run the reference branch once for new objects (``masks (K, H, W)``) at every scale."""
        for scale in self.scales:
            net = scale * self._budget(image)
            img, mask = _rescale(image, net), _rescale(masks.unsqueeze(1), net)
            with self._autocast():
                top = self.model.encode_reference(img.expand(len(masks), -1, -1, -1), mask)
            previous = state.reference.get(scale)
            state.reference[scale] = top if previous is None else torch.cat([previous, top])

    def _budget(self, image: torch.Tensor) -> float:
        """The factor that brings ``image`` within :attr:`max_pixels` (1 when it is within already)."""
        pixels = image.shape[-2] * image.shape[-1]
        if self.max_pixels is None or pixels <= self.max_pixels:
            return 1.0
        return math.sqrt(self.max_pixels / pixels)

    def _to_tensor(self, frame: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float in [0, 1] on the device."""
        if isinstance(frame, np.ndarray) and not frame.flags.writeable:
            frame = frame.copy()  # torch refuses to wrap read-only memory without a warning
        pixels = torch.as_tensor(frame)
        if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != torch.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB arrays, got {tuple(pixels.shape)} {pixels.dtype}")
        pixels = pixels.to(self.device, non_blocking=True)
        return pixels.permute(2, 0, 1).unsqueeze(0).float().div_(255)

    def _prompt_tensor(self, mask: np.ndarray, size: tuple[int, int], frame_idx: int, obj_id: int) -> torch.Tensor:
        if mask.shape != size:
            raise ValueError(
                f"mask for object {obj_id} at frame {frame_idx} is {mask.shape[1]}x{mask.shape[0]}, "
                f"the frames are {size[1]}x{size[0]}"
            )
        return torch.from_numpy(mask).to(self.device, dtype=torch.float32)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def _rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` by ``scale`` (identity at 1)."""
    if scale == 1.0:
        return x
    h, w = x.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
