"""A frame's label map and object scores copied to the host on a side stream, while the GPU goes on.

The job needs each frame on the host (RLE encoding), but a plain ``.cpu()`` waits for everything queued before
it, the next frame's network pass included, and the GPU then idles while the host encodes. The engine instead
computes the int32 label map and the scores on the GPU, queues their copy into page-locked memory on a side
stream behind an event, and launches the next frame before anyone waits: the copy and the host's work overlap
the next network pass.
"""

from __future__ import annotations

import numpy as np
import torch

from .aggregate import device_labels_and_scores


class Readback:
    """``labels (H, W) int32`` and ``scores (M,) float32`` of one frame, on their way to the host."""

    def __init__(self, obj_ids: list[int], probs: torch.Tensor, stream: torch.cuda.Stream) -> None:
        labels, scores = device_labels_and_scores(obj_ids, probs)
        computed = torch.cuda.Event()
        computed.record()
        self._labels = torch.empty(labels.shape, dtype=labels.dtype, pin_memory=True)
        self._scores = torch.empty(scores.shape, dtype=scores.dtype, pin_memory=True)
        with torch.cuda.stream(stream):
            stream.wait_event(computed)
            self._labels.copy_(labels, non_blocking=True)
            self._scores.copy_(scores, non_blocking=True)
            self._copied = torch.cuda.Event()
            self._copied.record(stream)
        # Made on the main stream, read on the side one: not to be reused before the copy is done.
        labels.record_stream(stream)
        scores.record_stream(stream)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Wait for the copy (not for later work on the GPU) and return host arrays."""
        self._copied.synchronize()
        return self._labels.numpy(), self._scores.numpy()
