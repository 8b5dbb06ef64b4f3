"""What `fast`'s choices cost on this machine: the preset, the preset without its search window, and the preset at
the network's full scale (1 instead of 7/8), then the window alone.

`savos bench quality`'s measurement (:func:`savos.bench.quality.bench_quality`: a generated 854x480 clip, 1 and
4 objects, seconds per frame after the first, FLOPs) of each variant, twice in alternation to show the run-to-run
spread, then the window's own function timed at that frame size. Prints JSON:

    python benchmarks/fast_cost.py > out.json
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import torch

from savos.bench.quality import bench_quality
from savos.checkpoint import load_default_model
from savos.inference.search import within_reach
from savos.quality import FAST, SEARCH_RADIUS

FRAMES, SIZE, OBJECTS = 11, (480, 854), (1, 4)


def main() -> None:
    model, _ = load_default_model()
    settings = {
        "fast": FAST,
        "fast without the window": replace(FAST, search_radius=None),
        "fast at scale 1": replace(FAST, scales=(1.0,)),
    }
    rows = []
    for attempt in (1, 2):
        for row in bench_quality(model, settings, objects=OBJECTS, frames=FRAMES, size=SIZE)["rows"]:
            kept = ("preset", "objects", "seconds_per_frame", "gflop_per_frame")
            rows.append({"attempt": attempt, **{k: row[k] for k in kept}})
    window_ms = {}
    for objects in OBJECTS:
        probs, previous = torch.rand(objects, *SIZE), torch.rand(objects, *SIZE)
        start = time.perf_counter()
        for _ in range(50):
            within_reach(probs, previous, SEARCH_RADIUS)
        window_ms[objects] = (time.perf_counter() - start) / 50 * 1000
    result = {"threads": torch.get_num_threads(), "size": list(SIZE), "rows": rows, "window_alone_ms": window_ms}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
