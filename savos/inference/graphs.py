"""The network step replayed as a CUDA graph, one graph per input shape.

On a GPU, one eager pass of resnet50 + decoder launches about a thousand kernels; at 480p the host spent three
times longer dispatching them than the GPU spent running them (profiled on an H100). A CUDA graph
records the launches once and replays them with one call. The batch grows and shrinks as videos join and leave,
so the rows are padded up to a bucket (1, 2, 3, 4, 6, 8, 12, 16, ...: padding is at most a third of a batch)
and one graph is kept per bucket and frame size. Every row of the network is independent of the others (batch
norms are folded or in eval mode), so padding rows change nothing in the real ones.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Step = Callable[..., torch.Tensor]  # tensors with the batch first in, a tensor with the batch first out
WARMUP_PASSES = 2  # on a side stream before capture, as CUDA graphs need (cuDNN picks its kernels, pools fill)


def bucket(rows: int) -> int:
    """The padded batch for ``rows``: the smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... that holds them."""
    if rows < 1:
        raise ValueError(f"a batch needs at least one row, got {rows}")
    power = 1
    while True:
        for size in (power, 3 * power // 2):
            if size >= rows:
                return size
        power *= 2


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor


class GraphedStep:
    """``step(*inputs) -> output``, every tensor batch first, replayed from a CUDA graph per padded shape (the
    engine's target step ``(reference, image, guidance) -> logits`` and its reference branch).

    The returned output lives in the graph's own memory and is overwritten by the next call: use or copy it
    before calling again. At most ``max_graphs`` graphs are kept (least recently used go first); all of them
    share one memory pool, which is safe because they are replayed one at a time and each output is read
    before the next replay.
    """

    def __init__(self, step: Step, max_graphs: int = 12) -> None:
        self.step = step
        self.max_graphs = max_graphs
        self._graphs: OrderedDict[tuple[object, ...], _Graph] = OrderedDict()
        self._pool: Any = None  # one memory pool for all graphs, made at the first capture
        self.captures = 0

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs[0].shape[0]
        padded = bucket(rows)
        key = (padded, *((x.shape[1:], x.dtype, x.is_contiguous(memory_format=torch.channels_last)) for x in inputs))
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._capture(key, inputs, padded)
        else:
            self._graphs.move_to_end(key)
        for static, given in zip(graph.inputs, inputs, strict=True):
            static[:rows].copy_(given)
        graph.graph.replay()
        return graph.output[:rows]

    def _capture(self, key: tuple[object, ...], inputs: tuple[torch.Tensor, ...], padded: int) -> _Graph:
        while len(self._graphs) >= self.max_graphs:
            self._graphs.popitem(last=False)
        static = tuple(_padded_like(x, padded) for x in inputs)
        side = torch.cuda.Stream(device=inputs[0].device)
        side.wait_stream(torch.cuda.current_stream(inputs[0].device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_PASSES):
                self.step(*static)
        torch.cuda.current_stream(inputs[0].device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads (frame prefetch, result writers) may use CUDA meanwhile
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            output = self.step(*static)
        self._graphs[key] = captured = _Graph(graph, static, output)
        self.captures += 1
        return captured


def _padded_like(x: torch.Tensor, rows: int) -> torch.Tensor:
    """Zeros of ``x``'s row shape, dtype and memory format, with ``rows`` rows."""
    padded = torch.zeros((rows, *x.shape[1:]), dtype=x.dtype, device=x.device)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        padded = padded.contiguous(memory_format=torch.channels_last)
    return padded
