"""The propagation engine: first-frame (or sparse) masks in, per-frame object probabilities out.

Usage, in the style of SAM 2::

    predictor = Predictor.from_pretrained(device="auto")  # or Predictor(model, ...) with a model of your own
    state = predictor.init_state(frames)                # any iterable of (H, W, 3) uint8 RGB frames
    predictor.add_mask(state, frame_idx=0, obj_id=1, mask=first_mask)
    for frame_idx, obj_ids, probs in predictor.propagate(state):
        ids = probs_to_ids(obj_ids, probs)               # (H, W) object ids
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from savos.prefetch import prefetch

from ..model import SAVOS
from ..model.backbone import EncoderFeatures
from ..model.fold import fold_batch_norms as _fold
from ..precision import PRECISION_CHOICES
from ..quality import DEFAULT_QUALITY, OnlineAdaptation, Quality
from .aggregate import labels_and_scores, soft_aggregate
from .backward import merge_directions, run_backward
from .cpu import native_bf16
from .graphs import GraphedStep
from .options import EngineOptions
from .passes import passes, rows_per_pass
from .readback import Readback
from .search import within_reach
from .state import FrameInput, VideoState, View

PAPER_SCALES = (0.5, 0.75, 1.0)
K = TypeVar("K")
_EXHAUSTED = object()  # propagate_many's source has no more videos
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

    The predictor works on a copy of ``model`` with its batch norms folded into their convolutions
    (:mod:`savos.model.fold`). On CUDA its weights are stored in the compute dtype and the network step is
    replayed from CUDA graphs (:mod:`savos.inference.graphs`). Both, and the memory budgets, are
    :class:`~savos.inference.options.EngineOptions`.

    Test-time options (:class:`~savos.quality.Quality`; :mod:`savos.quality` names measured sets of them):
    ``scales`` and ``flip`` (each scale also seen mirrored) are views whose probabilities are averaged. With
    ``online``, a video's decoder is fine-tuned on its first annotated frame, all its objects there together, before
    that frame is propagated, and further (on all those frames) at each later frame that annotates every tracked
    object (:mod:`savos.train.online`); the encoder stays shared, so a lock-step batch runs
    one encoder pass and each video's rows through its own decoder (eagerly: not graphed or compiled). Objects
    first annotated on other later frames use the video's decoder as it is. With ``search_radius``, each
    tracked object's probability is kept near its previous mask only (:mod:`savos.inference.search`).
    """

    def __init__(
        self,
        model: SAVOS,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        quality: Quality | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        """``device``: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``precision``: one of
        :data:`~savos.precision.PRECISION_CHOICES`; ``quality``: the test-time options (scales, flip, online
        adaptation, search window; :func:`savos.quality.quality_preset` names measured sets; None: the network
        alone, one pass per frame, which is not quite the ``fast`` preset); ``options``: how the engine runs
        (:class:`~savos.inference.options.EngineOptions`)."""
        if precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
        quality = quality if quality is not None else Quality()
        if not quality.scales or any(s <= 0 for s in quality.scales):
            raise ValueError(f"scales must be positive, got {list(quality.scales)}")
        self.quality = replace(quality, scales=tuple(float(s) for s in quality.scales))
        self.device = resolve_device(device)
        self.options = engine = (options if options is not None else EngineOptions()).for_device(
            self.device, model.config.backbone
        )
        self.checkpoint_meta: dict[str, Any] = {}  # set by from_pretrained
        if engine.fold_batch_norms:  # on a copy: the caller's model may go on training
            model = copy.deepcopy(model).eval()
            _fold(model)
        self.model = model.to(self.device).eval()
        # Every scale is seen as is and, with ``flip``, mirrored too; the probabilities are averaged over views.
        self.views: tuple[View, ...] = tuple((s, False) for s in self.scales) + (
            tuple((s, True) for s in self.scales) if self.flip else ()
        )
        self.dtype = compute_dtype(precision, self.device)
        # Online adaptation trains an fp32 copy of this decoder per video (the model's may be stored in bf16).
        self._adaptable_decoder = copy.deepcopy(self.model.decoder()).float() if self.online is not None else None
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        on_cuda = self.device.type == "cuda"
        if on_cuda and self.dtype != torch.float32:
            # Weights stored in the compute dtype: under autocast, fp32 weights are cast again at every call (a
            # copy kernel per convolution, about a tenth of the GPU's time with 16 videos in lock-step).
            self.model = self.model.to(self.dtype)
        # propagate_many's results travel to the host on this stream (savos.inference.readback).
        self._readback_stream = torch.cuda.Stream(self.device) if on_cuda else None
        self._network: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = self._target_logits
        if engine.compile:  # under CUDA graphs the batch is padded to a few buckets: one static compilation each
            _allow_recompiles(64)
            self._network = torch.compile(self._target_logits, dynamic=not self.cuda_graphs)
        self._reference_branch: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._reference_top
        if self.cuda_graphs:  # the host's launch time gone: one replay per step (savos.inference.graphs)
            self._network = GraphedStep(self._network)
            self._reference_branch = GraphedStep(self._reference_top)

    # The options in force, by name: read-only, as a predictor is built for its options.
    @property
    def scales(self) -> tuple[float, ...]:
        return self.quality.scales

    @property
    def flip(self) -> bool:
        return self.quality.flip

    @property
    def online(self) -> OnlineAdaptation | None:
        return self.quality.online

    @property
    def search_radius(self) -> float | None:
        return self.quality.search_radius

    @property
    def prefetch_frames(self) -> int:
        return self.options.prefetch_frames

    @property
    def max_pixels(self) -> int | None:
        return self.options.max_pixels

    @property
    def max_pass_pixels(self) -> int:
        return self.options.max_pass_pixels

    @property
    def channels_last(self) -> bool:
        return self.options.channels_last

    @property
    def pin_memory(self) -> bool:
        return self.options.pin_memory

    @property
    def cuda_graphs(self) -> bool:
        return self.options.cuda_graphs

    @property
    def compiled(self) -> bool:
        return self.options.compile

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        quality: str | Quality = DEFAULT_QUALITY,
        options: EngineOptions | None = None,
    ) -> Predictor:
        """A predictor in one call: the shipped checkpoint (``None``, ``"default"`` or its id) or a checkpoint
        file, with a quality preset (``fast``, ``balanced``, ``best``) or test-time options of your own; the
        other arguments are the constructor's. The checkpoint's metadata (its licence too) is
        :attr:`checkpoint_meta`.
        """
        from ..checkpoint import DEFAULT_CHECKPOINT_ID, load_checkpoint, load_default_model
        from ..quality import quality_preset

        if name_or_path is None or str(name_or_path) in ("default", DEFAULT_CHECKPOINT_ID):
            model, meta = load_default_model()
        else:
            model, meta = load_checkpoint(name_or_path)
        test_time = quality_preset(quality) if isinstance(quality, str) else quality
        predictor = cls(model, device=device, precision=precision, quality=test_time, options=options)
        predictor.checkpoint_meta = meta
        return predictor

    def init_state(self, frames: Iterable[FrameInput]) -> VideoState:
        """A new video. ``frames`` are read lazily (and a few ahead) during :meth:`propagate`."""
        return VideoState(frames=self._read_ahead(frames), source=frames)

    def _read_ahead(self, frames: Iterable[FrameInput]) -> Iterator[FrameInput]:
        source = _pinned(frames) if self.pin_memory else iter(frames)
        return prefetch(source, self.prefetch_frames)

    def reset_state(self, state: VideoState) -> None:
        """Forget every object, annotation and propagated frame of ``state``: its video starts again at frame 0.

        The frames are read again from their source, which must allow it (a frame folder, a video file, a list);
        a one-pass iterator cannot be, and is refused (make a new state from new frames instead).
        """
        if state.source is None or not state.rereadable:
            raise ValueError("this video's frames were a one-pass iterator: they cannot be read again")
        close = getattr(state.frames, "close", None)
        if close is not None:
            close()
        fresh = VideoState(frames=self._read_ahead(state.source), source=state.source)
        for name in state.__dataclass_fields__:
            setattr(state, name, getattr(fresh, name))

    def remove_object(self, state: VideoState, obj_id: int) -> None:
        """Stop tracking ``obj_id`` and drop its annotations still ahead. Removed before propagation starts, the
        other objects' masks are those of a run that never had it; removed later, from the next frame on (the
        frames before were aggregated with it). A later annotation of the same id starts it afresh."""
        pending = [frame_idx for frame_idx, masks in state.prompts.items() if obj_id in masks]
        if obj_id not in state.obj_ids and not pending:
            raise ValueError(f"object {obj_id} is neither tracked nor annotated ahead")
        for frame_idx in pending:
            del state.prompts[frame_idx][obj_id]
            if not state.prompts[frame_idx]:
                del state.prompts[frame_idx]
        for _, annotated in state.adapted_on:  # a later fine-tuning no longer learns it
            annotated.pop(obj_id, None)
        if obj_id not in state.obj_ids:
            return
        slot = state.obj_idx(obj_id)
        keep = [i for i in range(len(state.obj_ids)) if i != slot]
        state.reference = {view: ref[keep] for view, ref in state.reference.items()}
        if state.guidance is not None:
            state.guidance = state.guidance[keep]
        del state.obj_ids[slot]

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

    def add_absence(self, state: VideoState, frame_idx: int, obj_id: int) -> None:
        """Say ``obj_id`` is not on frame ``frame_idx`` (a person removed its mask there): on that frame it has
        no pixels, and the next frame's guidance has none of it. It stays tracked: the network may find it again
        from its reference on later frames, as it would after leaving and coming back. The object must be
        annotated on an earlier frame (an error when that frame is reached otherwise)."""
        if frame_idx < state.next_frame_idx:
            raise ValueError(
                f"frame {frame_idx} was already propagated; annotate frames ahead of {state.next_frame_idx}"
            )
        size = state.size or next(iter(m.shape for masks in state.prompts.values() for m in masks.values()), None)
        if size is None:
            raise ValueError(f"object {obj_id}: an absence needs the object annotated first")
        state.prompts.setdefault(frame_idx, {})[obj_id] = np.zeros(size, bool)

    def propagate_backward(self, state: VideoState) -> None:
        """Also propagate backwards from annotations after frame 0 (:mod:`~savos.inference.backward`): an object
        first annotated at frame k gets masks before k, and an object annotated again (corrected) at k gets its
        frames since its previous annotation updated. Call once every annotation is added, before propagating;
        the frames are read again from their source (a frame folder, a video file or a list)."""
        if state.next_frame_idx:
            raise ValueError("propagate backwards before the first frame is propagated")
        state.backward = run_backward(self, state)

    def _with_backward(
        self, state: VideoState, frame_idx: int, obj_ids: list[int], probs: torch.Tensor
    ) -> tuple[list[int], torch.Tensor]:
        """A frame's result, merged with the backward passes' where they reached it."""
        backward = state.backward.pop(frame_idx, None)
        return (obj_ids, probs) if backward is None else merge_directions(obj_ids, probs, backward)

    def propagate(
        self, state: VideoState, start_frame_idx: int | None = None
    ) -> Iterator[tuple[int, list[int], torch.Tensor]]:
        """Yield ``(frame_idx, obj_ids, probs)`` for every frame in order, from ``start_frame_idx`` (default: the
        next frame not yet propagated; frames before it are read and passed over).

        ``probs`` is ``(M, H, W)`` float32 on the predictor's device: the aggregated probability of each
        object in ``obj_ids`` (the background is ``1 - probs.sum(0)``). Objects appear from the frame of their
        first annotation on; frames before any annotation yield ``M = 0``.
        """
        if start_frame_idx is not None:
            self._skip_to(state, start_frame_idx)
        for frame in state.frames:
            frame_idx = state.next_frame_idx
            (probs,) = self.step_many([(state, frame)])
            yield frame_idx, *self._with_backward(state, frame_idx, list(state.obj_ids), probs)
        _check_no_late_prompts(state)

    def _skip_to(self, state: VideoState, start_frame_idx: int) -> None:
        """Pass over the frames before ``start_frame_idx`` (a video starts there; nothing is tracked yet)."""
        if start_frame_idx < state.next_frame_idx:
            raise ValueError(f"frame {start_frame_idx} was already propagated; the next is {state.next_frame_idx}")
        early = sorted(frame_idx for frame_idx in state.prompts if frame_idx < start_frame_idx)
        if early or (state.obj_ids and start_frame_idx > state.next_frame_idx):
            raise ValueError(
                f"cannot start at frame {start_frame_idx}: objects are tracked or annotated before it "
                f"(annotated frames {early}); annotate at or after the start frame"
            )
        while state.next_frame_idx < start_frame_idx:
            if next(state.frames, None) is None:
                raise ValueError(f"the video has {state.next_frame_idx} frames; it cannot start at {start_frame_idx}")
            state.next_frame_idx += 1

    def propagate_many(
        self, videos: Iterable[tuple[K, VideoState] | None], max_active: int = 8
    ) -> Iterator[FrameResult[K] | VideoEnd[K]]:
        """Advance up to ``max_active`` videos in lock-step: frame t of each active video in one network batch.

        Each video is sequential (frame t needs frame t-1's probabilities) but videos are independent, so
        batching across videos fills the accelerator where one video with one object cannot. ``videos`` is
        read lazily: a new video joins as soon as one ends. A source fed over time may yield ``None`` for "no
        video ready yet": the active ones go on without it and the source is asked again at the next frame (with
        no video active it should block rather than yield ``None``). Yields, per video in its frame order, a
        :class:`FrameResult` per frame and then one :class:`VideoEnd` (with the error, if its frames or
        annotations were bad: that video stops, the others go on). Results equal :meth:`propagate`'s up to
        float summation order (batched convolutions). A step's results are yielded once the next step is queued,
        so reading them (:meth:`FrameResult.labels_and_scores`) overlaps the next network pass on a GPU.
        """
        if max_active < 1:
            raise ValueError(f"max_active must be at least 1, got {max_active}")
        waiting = iter(videos)
        active: list[tuple[K, VideoState]] = []
        exhausted = False
        # A step's results are handed out after the next step is queued on the GPU (their copies to the host
        # were queued on a side stream first): whoever reads them back overlaps the next network pass.
        previous: list[FrameResult[K]] = []
        while True:
            while not exhausted and len(active) < max_active:
                video = next(waiting, _EXHAUSTED)
                if video is None:
                    break
                if video is _EXHAUSTED:
                    exhausted = True
                    break
                active.append(video)  # type: ignore[arg-type]
            if not active:
                yield from previous
                previous = []
                if exhausted:
                    return
                continue
            ended: list[VideoEnd[K]] = []
            batch: list[tuple[K, VideoState, FrameInput]] = []
            for key, state in list(active):
                error: Exception | None
                try:
                    batch.append((key, state, next(state.frames)))
                    continue
                except StopIteration:
                    error = _late_prompts_error(state)
                except Exception as err:  # a bad frame ends its own video only
                    error = err
                active = [video for video in active if video[1] is not state]  # by identity: keys may repeat
                ended.append(VideoEnd(key, error))
            prepared: list[tuple[K, _Prepared]] = []
            for key, state, frame in batch:
                try:
                    prepared.append((key, self._prepare(state, frame)))
                except ValueError as err:  # wrong frame size, bad annotation: this video only
                    active = [video for video in active if video[1] is not state]
                    ended.append(VideoEnd(key, err))
            steps = [step for _, step in prepared]
            current = [  # no network pass when every active video just ended
                self._result(
                    key,
                    step.frame_idx,
                    *self._with_backward(step.state, step.frame_idx, list(step.state.obj_ids), probs),
                )
                for (key, step), probs in zip(prepared, self._run(steps) if steps else [], strict=True)
            ]
            yield from previous  # each video's frames before its end, in order
            yield from ended
            previous = current

    def _result(self, key: K, frame_idx: int, obj_ids: list[int], probs: torch.Tensor) -> FrameResult[K]:
        readback = Readback(obj_ids, probs, self._readback_stream) if self._readback_stream is not None else None
        return FrameResult(key, frame_idx, obj_ids, probs, readback)

    def step_many(self, items: Sequence[tuple[VideoState, FrameInput]]) -> list[torch.Tensor]:
        """One frame of each of several videos (each its next frame), in one network batch; their probs."""
        return self._run([self._prepare(state, frame) for state, frame in items])

    @torch.inference_mode()
    def _run(self, steps: list[_Prepared]) -> list[torch.Tensor]:
        tracked = [s for s in steps if s.tracked]
        radius = self.search_radius
        for step, predicted in zip(tracked, self._predict_many(tracked), strict=True):
            step.predicted = predicted if radius is None else within_reach(predicted, _guidance(step)[:, 0], radius)
        return [self._finish(step) for step in steps]

    @torch.inference_mode()
    def _prepare(self, state: VideoState, frame: FrameInput) -> _Prepared:
        """Check the frame, take its annotations, add references for new objects: all but the network pass."""
        frame_idx = state.next_frame_idx
        image = self._to_tensor(frame)
        size = (image.shape[-2], image.shape[-1])
        if state.size is None:
            state.size = size
        elif size != state.size:
            raise ValueError(
                f"frame {frame_idx} is {size[1]}x{size[0]}, the video's first frame {state.size[1]}x{state.size[0]}"
            )
        masks = state.prompts.pop(frame_idx, {})
        prompts = {oid: self._prompt_tensor(m, size, frame_idx, oid) for oid, m in masks.items()}
        tracked = [i for i, oid in enumerate(state.obj_ids) if oid not in prompts]
        step = _Prepared(state, frame_idx, image, prompts, tracked)
        # The tracked objects' guidance is taken before new objects are appended (they have none yet).
        if tracked and len(tracked) == len(state.obj_ids):  # the usual frame: no copies, no index upload
            step.guidance, step.reference = state.guidance, dict(state.reference)
        elif tracked:  # rows gathered by Python index: an index tensor's upload would wait for the GPU
            assert state.guidance is not None
            step.guidance = torch.stack([state.guidance[i] for i in tracked])
            step.reference = {view: torch.stack([ref[i] for i in tracked]) for view, ref in state.reference.items()}
        new_ids = sorted(oid for oid in prompts if oid not in state.obj_ids)
        absent = [oid for oid in new_ids if not masks[oid].any()]  # on the host: the device copy's would wait
        if absent:
            raise ValueError(f"objects {absent} are marked absent on frame {frame_idx} before any annotation of them")
        first = state.decoder is None and bool(new_ids)
        in_full = state.decoder is not None and bool(prompts) and set(prompts) >= set(state.obj_ids)
        if self.online is not None and (first or in_full):
            state.decoder = self._adapt(state, image, prompts)
        if new_ids:
            self._add_references(state, image, torch.stack([prompts[oid] for oid in new_ids]))
            state.obj_ids.extend(new_ids)
        state.next_frame_idx += 1
        return step

    def _finish(self, step: _Prepared) -> torch.Tensor:
        """Combine predictions and annotations by soft aggregation; the result is the next guidance."""
        state, size = step.state, step.image.shape[-2:]
        if step.predicted is not None and len(step.tracked) == len(state.obj_ids):
            fg = step.predicted
        else:  # rows written one by one: indexing by a list uploads it, and the upload waits for the GPU
            fg = torch.zeros((len(state.obj_ids), *size), device=self.device)
            if step.predicted is not None:
                for row, i in enumerate(step.tracked):
                    fg[i] = step.predicted[row]
        if step.prompts:
            outside = 1 - torch.stack(list(step.prompts.values())).amax(dim=0)
            for i in step.tracked:
                fg[i] *= outside
            for oid, annotated in step.prompts.items():
                fg[state.obj_idx(oid)] = annotated
        if not state.obj_ids:
            return fg
        probs = soft_aggregate(fg)[1:]
        state.guidance = probs.unsqueeze(1)
        return probs

    def _predict_many(self, steps: list[_Prepared]) -> list[torch.Tensor]:
        """Foreground probability ``(len(tracked), H, W)`` of each step's objects as if alone, averaged over
        scales. Steps whose frames have the same size share one network batch per scale."""
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, step in enumerate(steps):
            by_size.setdefault((step.image.shape[-2], step.image.shape[-1]), []).append(i)
        results: list[torch.Tensor | None] = [None] * len(steps)
        for size, members in by_size.items():
            group = [steps[i] for i in members]
            counts = [len(s.tracked) for s in group]
            total = torch.zeros((sum(counts), *size), device=self.device)
            for view in self.views:
                scale, flipped = view
                net = scale * self._budget(group[0].image)
                images = [_mirror(_rescale(s.image, net), flipped) for s in group]
                per_pass = rows_per_pass(self.max_pass_pixels, *images[0].shape[-2:])
                for first, pieces in passes(counts, per_pass):
                    img = torch.cat([images[i].expand(hi - lo, -1, -1, -1) for i, lo, hi in pieces])
                    guide = _rescale(torch.cat([_guidance(group[i])[lo:hi] for i, lo, hi in pieces]), net)
                    reference = torch.cat([group[i].reference[view][lo:hi] for i, lo, hi in pieces])
                    img, guide = self._layout(img), self._layout(_mirror(guide, flipped))
                    decoders = [(group[i].state.decoder, hi - lo) for i, lo, hi in pieces]
                    with self._autocast():
                        if any(decoder is not None for decoder, _ in decoders):
                            logits = self._per_video_logits(reference, img, guide, decoders)
                        else:
                            logits = self._network(reference, img, guide)
                    probs = torch.softmax(logits.float(), dim=1)[:, 1:]
                    probs = F.interpolate(probs, scale_factor=4, mode="bilinear", align_corners=False)
                    probs = _mirror(probs[..., : img.shape[-2], : img.shape[-1]], flipped)
                    if probs.shape[-2:] != size:
                        probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
                    total[first : first + len(probs)] += probs[:, 0]
            total /= len(self.views)
            for i, part in zip(members, total.split(counts), strict=True):
                results[i] = part
        return [r for r in results if r is not None]

    def _target_logits(self, reference: torch.Tensor, image: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        target = self.model.encode_target(image, guidance)
        return self.model.decode(reference, target, (image.shape[-2], image.shape[-1]))

    def _per_video_logits(
        self,
        reference: torch.Tensor,
        image: torch.Tensor,
        guidance: torch.Tensor,
        decoders: list[tuple[nn.Module | None, int]],
    ) -> torch.Tensor:
        """Like the network step, with each video's rows (``decoders``: its decoder and row count, in row
        order; None is the model's own) decoded by that video's decoder. The encoder runs once for all rows."""
        target = self.model.encode_target(image, guidance)
        size = (image.shape[-2], image.shape[-1])
        own = self.model.decoder()
        logits, row = [], 0
        for decoder, rows in decoders:
            part = EncoderFeatures(
                *(getattr(target, level)[row : row + rows] for level in ("res2", "res3", "res4", "top"))
            )
            logits.append((decoder or own)(reference[row : row + rows], part, size))
            row += rows
        return torch.cat(logits)

    def _adapt(self, state: VideoState, image: torch.Tensor, prompts: dict[int, torch.Tensor]) -> nn.Module:
        """A decoder fine-tuned (:mod:`savos.train.online`) on this frame's annotations and those of the frames it
        was fine-tuned on before in this video, in the network's precision: from the model's decoder at the first,
        from the video's own decoder at each later one (what it learnt is kept, not relearnt).

        It is called at the first annotated frame and at each later one that annotates every tracked object (a
        person's fix of a one-object video, say; a fix of one object among several says nothing of the others'
        pixels there). The frames before keep the decoder they had, so a fix at frame k changes no mask before k.
        It trains at the size the network sees the frames (the pixel budget applied).
        """
        from ..train.online import adapt_decoder

        assert self.online is not None
        assert self._adaptable_decoder is not None
        budget = self._budget(image)
        pixels = _rescale(image, budget)[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).cpu().numpy()
        masks = {oid: (_rescale(m[None, None], budget)[0, 0] > 0.5).cpu().numpy() for oid, m in prompts.items()}
        state.adapted_on.append((pixels, masks))
        ids = sorted({oid for _, annotated in state.adapted_on for oid in annotated})
        slots = {oid: min(slot, 254) for slot, oid in enumerate(ids, start=1)}
        examples = []
        for frame, annotated in state.adapted_on:
            labels = np.zeros(frame.shape[:2], dtype=np.uint8)
            for oid, mask in annotated.items():
                labels[mask] = slots[oid]
            examples.append((frame, labels))
        start = self._adaptable_decoder if state.decoder is None else state.decoder
        decoder = adapt_decoder(self.model, start, examples, self.online, autocast=self._autocast)
        decoder = decoder.to(next(self.model.decoder().parameters()).dtype)
        return decoder.to(memory_format=torch.channels_last) if self.channels_last else decoder

    def _reference_top(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_reference(image, mask)

    def _add_references(self, state: VideoState, image: torch.Tensor, masks: torch.Tensor) -> None:
        """Run the reference branch once for new objects (``masks (K, H, W)``) in every view."""
        for view in self.views:
            scale, flipped = view
            net = scale * self._budget(image)
            img, mask = _mirror(_rescale(image, net), flipped), _mirror(_rescale(masks.unsqueeze(1), net), flipped)
            per_pass = rows_per_pass(self.max_pass_pixels, *img.shape[-2:])
            tops = [state.reference[view]] if view in state.reference else []
            for low in range(0, len(masks), per_pass):
                rows = mask[low : low + per_pass]
                with self._autocast():
                    top = self._reference_branch(self._layout(img.expand(len(rows), -1, -1, -1)), self._layout(rows))
                # Kept across steps: copied out of the graph's memory, which the next replay reuses.
                tops.append(top.clone() if self.cuda_graphs else top)
            state.reference[view] = tops[0] if len(tops) == 1 else torch.cat(tops)

    def _budget(self, image: torch.Tensor) -> float:
        """The factor that brings ``image`` within the quality's ``short_side`` and :attr:`max_pixels` (1 when it
        is within both already)."""
        height, width = image.shape[-2:]
        factor = 1.0
        if self.quality.short_side is not None and min(height, width) > self.quality.short_side:
            factor = self.quality.short_side / min(height, width)
        if self.max_pixels is not None and height * width * factor**2 > self.max_pixels:
            factor = math.sqrt(self.max_pixels / (height * width))
        return factor

    def _to_tensor(self, frame: FrameInput) -> torch.Tensor:
        """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float in [0, 1] on the device."""
        if isinstance(frame, np.ndarray) and not frame.flags.writeable:
            frame = frame.copy()  # torch refuses to wrap read-only memory without a warning
        pixels = torch.as_tensor(frame)
        if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != torch.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB arrays, got {tuple(pixels.shape)} {pixels.dtype}")
        pixels = pixels.to(self.device, non_blocking=True)
        return pixels.permute(2, 0, 1).unsqueeze(0).float().div_(255)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _prompt_tensor(self, mask: np.ndarray, size: tuple[int, int], frame_idx: int, obj_id: int) -> torch.Tensor:
        if mask.shape != size:
            raise ValueError(
                f"mask for object {obj_id} at frame {frame_idx} is {mask.shape[1]}x{mask.shape[0]}, "
                f"the frames are {size[1]}x{size[0]}"
            )
        # As bytes from page-locked memory, then widened on the device: a copy from pageable memory would make
        # the host wait for every queued step (a stall at each video's join).
        host = torch.from_numpy(mask.view(np.uint8))
        if self.pin_memory:
            host = host.pin_memory()
        return host.to(self.device, non_blocking=True).to(torch.float32)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        # No cast cache on CUDA: the weights are in the compute dtype already, and graph capture forbids it.
        return torch.autocast(device_type=self.device.type, dtype=self.dtype, cache_enabled=self.device.type == "cpu")


@dataclass(frozen=True)
class FrameResult(Generic[K]):
    """One frame of video ``key``: like :meth:`Predictor.propagate`'s ``(frame_idx, obj_ids, probs)``."""

    key: K
    frame_idx: int
    obj_ids: list[int]
    probs: torch.Tensor
    readback: Readback | None = field(default=None, compare=False, repr=False)

    def labels_and_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """The host's ``(labels (H, W) int32, scores (M,) float32)`` (:func:`~.aggregate.labels_and_scores`); on
        CUDA already on their way, copied while the GPU ran the next step."""
        if self.readback is not None:
            return self.readback.result()
        return labels_and_scores(self.obj_ids, self.probs)


@dataclass(frozen=True)
class VideoEnd(Generic[K]):
    """Video ``key`` is done: after its last frame, or at ``error`` (its frames or annotations were bad)."""

    key: K
    error: Exception | None = None


@dataclass
class _Prepared:
    """One video's frame between preparation and aggregation (the network pass is batched across videos)."""

    state: VideoState
    frame_idx: int
    image: torch.Tensor
    prompts: dict[int, torch.Tensor]
    tracked: list[int]
    guidance: torch.Tensor | None = None
    reference: dict[View, torch.Tensor] = field(default_factory=dict)
    predicted: torch.Tensor | None = None


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype: ``auto`` is bf16 on CUDA and on CPUs that multiply bf16 natively, else fp32."""
    if precision != "auto":
        return PRECISIONS[precision]
    if device.type == "cuda" or (device.type == "cpu" and native_bf16()):
        return torch.bfloat16
    return torch.float32


def _allow_recompiles(limit: int) -> None:
    """Let dynamo keep ``limit`` compilations of one function (one per batch bucket) instead of its default 8."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), limit))


def _guidance(step: _Prepared) -> torch.Tensor:
    assert step.guidance is not None, "a tracked object always has guidance"
    return step.guidance


def _late_prompts_error(state: VideoState) -> ValueError | None:
    if not state.prompts:
        return None
    late = sorted(state.prompts)
    return ValueError(f"annotations for frames {late} lie past the last frame ({state.next_frame_idx - 1})")


def _check_no_late_prompts(state: VideoState) -> None:
    error = _late_prompts_error(state)
    if error is not None:
        raise error


def _pinned(frames: Iterable[FrameInput]) -> Iterator[FrameInput]:
    """Frames copied into page-locked host memory (anything not a plain RGB frame passes through, to fail
    with the engine's own message)."""
    for frame in frames:
        if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3:
            pinned = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
            pinned.numpy()[...] = frame
            yield pinned
        else:
            yield frame


def _mirror(x: torch.Tensor, flipped: bool) -> torch.Tensor:
    """``x`` mirrored left-right when ``flipped`` (its own inverse)."""
    return x.flip(-1) if flipped else x


def _rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` by ``scale`` (identity at 1)."""
    if scale == 1.0:
        return x
    h, w = x.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
