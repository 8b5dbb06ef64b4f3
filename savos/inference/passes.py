"""Network passes of bounded size: a step's rows (one per tracked object of each video) split into passes.

A batch's activation memory grows with its rows times their pixels, and the rows of a step are as many as the
objects of all its videos: K videos of 64 objects each at 1080p would not fit on any GPU in one pass. The
engine gives each pass at most a budget of input pixels instead; below the budget nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

# Default budgets, in input pixels per pass. On CUDA 64 rows of 480p: resnet50 ran fastest at that batch on an
# H100 (BENCHMARKS.md), and its peak memory grew by about 100 MB a 480p row in bf16 (measured on a CPU): ~7 GB.
# On a CPU a batch is barely cheaper per row than one row, so a small budget (8 rows of 480p, under 1 GB) costs
# nothing and bounds memory.
CUDA_PASS_PIXELS = 64 * 854 * 480
CPU_PASS_PIXELS = 8 * 854 * 480

Piece = tuple[int, int, int]  # (index of the video's step, its first row, its row after the last)


def rows_per_pass(budget: int, height: int, width: int) -> int:
    """How many rows of ``height x width`` input fit in ``budget`` pixels; at least one."""
    return max(1, budget // max(1, height * width))


def passes(counts: Sequence[int], per_pass: int) -> Iterator[tuple[int, list[Piece]]]:
    """Split consecutive steps' rows (``counts[i]`` rows for step i) into passes of at most ``per_pass`` rows.

    Yields ``(first row of the pass, pieces)`` in row order; a step may be split across passes.
    """
    if per_pass < 1:
        raise ValueError(f"per_pass must be at least 1, got {per_pass}")
    start, filled, pieces = 0, 0, []
    for index, count in enumerate(counts):
        low = 0
        while low < count:
            take = min(count - low, per_pass - filled)
            pieces.append((index, low, low + take))
            filled, low = filled + take, low + take
            if filled == per_pass:
                yield start, pieces
                start, filled, pieces = start + filled, 0, []
    if pieces:
        yield start, pieces
