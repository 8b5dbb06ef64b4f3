"""Training clips: a reference frame with its labels and a few target frames, from four sources.

- ``video``: real frames of one sequence (reference anywhere, targets a few frames apart, either direction).
- ``composite``: a video clip with the objects of another sequence's clip pasted over it (two objects or more).
- ``simulated``: one annotated frame, mirrored and moved by affine motions (the paper's still-image pairs).
- ``lucid``: one annotated frame, re-imagined by lucid dreaming.

Every clip is cropped to one training size, its ids renumbered 1..M, and carries the fake previous-frame mask
that guides its first target. A clip depends only on the random generator it is given, so a batch is a pure
function of ``(seed, step)`` and a resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..data.composite import paste_objects
from ..data.lucid import lucid_clip
from ..data.simulate import deform_mask, simulated_clip
from ..data.vos import AnnotatedVideo

SOURCES = ("video", "composite", "simulated", "lucid")
DEFAULT_MIX = {"video": 0.5, "composite": 0.2, "simulated": 0.15, "lucid": 0.15}
# A clip is scaled to between 1x and 1.8x the scale at which the whole frame just covers the crop: the
# network sees objects at their small training-crop size and up to nearly their size at 480p.
ZOOM = (1.0, 1.8)


@dataclass
class Clip:
    """``reference_image (H, W, 3)`` uint8, ``reference_labels (H, W)`` ids 0..M, targets likewise,
    ``first_guidance (M, H, W)`` bool: the fake previous mask of each object for the first target."""

    source: str
    reference_image: np.ndarray
    reference_labels: np.ndarray
    images: list[np.ndarray]
    labels: list[np.ndarray]
    first_guidance: np.ndarray

    @property
    def num_objects(self) -> int:
        return int(self.first_guidance.shape[0])


class ClipSampler:
    """Draws clips of ``length`` targets at ``size = (H, W)`` from annotated sequences."""

    def __init__(
        self,
        sequences: Sequence[AnnotatedVideo],
        *,
        size: tuple[int, int] = (256, 448),
        length: int = 3,
        max_skip: int = 5,
        mix: Mapping[str, float] = DEFAULT_MIX,
        max_objects: int = 3,
    ) -> None:
        unknown = set(mix) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown clip sources {sorted(unknown)}; choose from {', '.join(SOURCES)}")
        if not sequences:
            raise ValueError("no training sequences")
        if mix.get("composite", 0) and len(sequences) < 2:
            raise ValueError("composite clips need at least two sequences")
        self.sequences = sequences
        self.size = size
        self.length = length
        self.max_skip = max_skip
        self.max_objects = max_objects
        self.sources = [s for s in SOURCES if mix.get(s, 0) > 0]
        weights = np.array([mix[s] for s in self.sources], dtype=np.float64)
        self.weights = weights / weights.sum()

    def sample(self, rng: np.random.Generator) -> Clip:
        source = str(rng.choice(self.sources, p=self.weights))
        if source in ("video", "composite"):
            base, (ref_image, ref_labels, images, labels) = self._video(rng)
            if source == "composite":  # the donor is pasted into the reference frame too: it is an object
                _, (donor_ref_image, donor_ref_labels, donor_images, donor_labels) = self._video(rng, exclude=base)
                (ref_image, *images), (ref_labels, *labels) = paste_objects(
                    [ref_image, *images],
                    [ref_labels, *labels],
                    [donor_ref_image, *donor_images],
                    [donor_ref_labels, *donor_labels],
                    rng,
                )
        else:
            seq = self.sequences[int(rng.integers(len(self.sequences)))]
            frame_idx = int(rng.choice(seq.annotated))
            ref_image, ref_labels, _, _ = self._crop(rng, seq.image(frame_idx), seq.labels(frame_idx), [], [])
            make = simulated_clip if source == "simulated" else lucid_clip
            images, labels = make(ref_image, ref_labels, rng, self.length)
        return self._finish(rng, source, ref_image, ref_labels, images, labels)

    def _video(
        self, rng: np.random.Generator, exclude: int = -1
    ) -> tuple[int, tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]]:
        """A cropped video clip from a random sequence other than ``exclude``, and that sequence's index."""
        index = int(rng.choice([i for i in range(len(self.sequences)) if i != exclude]))
        seq = self.sequences[index]
        annotated = seq.annotated
        skip = int(rng.integers(1, self.max_skip + 1))
        while skip > 1 and skip * self.length >= len(annotated):
            skip -= 1
        start = int(rng.integers(0, max(1, len(annotated) - skip * self.length)))
        targets = [annotated[min(start + skip * (k + 1), len(annotated) - 1)] for k in range(self.length)]
        if rng.random() < 0.5:  # play the clip backwards: a different motion from the same footage
            targets.reverse()
        ref_idx = int(rng.choice(annotated))
        return index, self._crop(
            rng,
            seq.image(ref_idx),
            seq.labels(ref_idx),
            [seq.image(i) for i in targets],
            [seq.labels(i) for i in targets],
        )

    def _crop(
        self,
        rng: np.random.Generator,
        ref_image: np.ndarray,
        ref_labels: np.ndarray,
        images: list[np.ndarray],
        labels: list[np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Scale the frames (see :data:`ZOOM`), then crop around the reference object (one crop for the clip)."""
        out_h, out_w = self.size
        h, w = ref_labels.shape
        scale = max(out_h / h, out_w / w) * rng.uniform(*ZOOM)
        new_w, new_h = max(out_w, round(w * scale)), max(out_h, round(h * scale))
        ys, xs = np.nonzero(ref_labels)
        cy, cx = (ys.mean() * new_h / h, xs.mean() * new_w / w) if len(ys) else (new_h / 2, new_w / 2)
        top = int(np.clip(cy - out_h / 2 + rng.uniform(-0.25, 0.25) * out_h, 0, new_h - out_h))
        left = int(np.clip(cx - out_w / 2 + rng.uniform(-0.25, 0.25) * out_w, 0, new_w - out_w))
        flip = rng.random() < 0.5

        def image_crop(image: np.ndarray) -> np.ndarray:
            out = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)[
                top : top + out_h, left : left + out_w
            ]
            return np.ascontiguousarray(out[:, ::-1] if flip else out)

        def label_crop(ids: np.ndarray) -> np.ndarray:
            out = cv2.resize(ids, (new_w, new_h), interpolation=cv2.INTER_NEAREST)[
                top : top + out_h, left : left + out_w
            ]
            return np.ascontiguousarray(out[:, ::-1] if flip else out)

        return (
            image_crop(ref_image),
            label_crop(ref_labels),
            [image_crop(i) for i in images],
            [label_crop(i) for i in labels],
        )

    def _finish(
        self,
        rng: np.random.Generator,
        source: str,
        ref_image: np.ndarray,
        ref_labels: np.ndarray,
        images: list[np.ndarray],
        labels: list[np.ndarray],
    ) -> Clip:
        """Keep at most ``max_objects`` objects (those in the reference), renumber them 1..M, add guidance."""
        present = [int(i) for i in np.unique(ref_labels) if i not in (0, 255)]
        if not present:  # the object left the crop: keep the clip, as a one-object clip with an empty object
            present = [int(i) for i in np.unique(labels[0]) if i not in (0, 255)][:1] or [1]
        if len(present) > self.max_objects:
            present = sorted(rng.choice(present, self.max_objects, replace=False).tolist())
        lookup = np.zeros(256, dtype=np.uint8)
        lookup[present] = np.arange(1, len(present) + 1)
        ref_labels = lookup[ref_labels]
        labels = [lookup[ids] for ids in labels]
        guidance = np.stack([deform_mask(labels[0] == m, rng) for m in range(1, len(present) + 1)])
        return Clip(source, ref_image, ref_labels, images, labels, guidance)
