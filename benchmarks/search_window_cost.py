"""What the search window costs on this machine: `fast` with and without it, and the window alone.

A generated 854x480 clip of 11 frames with 1 and with 4 objects through the default checkpoint on the CPU, each
setting run twice in alternation (seconds per frame over frames 1-10), and the window's own function timed on
that frame size. Prints JSON:

    python benchmarks/search_window_cost.py > out.json
"""

from __future__ import annotations

import json
import time

import torch

from savos.checkpoint import load_default_model
from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.inference.search import within_reach
from savos.quality import SEARCH_RADIUS, Quality, quality_preset

FRAMES, HEIGHT, WIDTH = 11, 480, 854


def seconds_per_frame(predictor: Predictor, objects: int) -> float:
    video = make_video(num_frames=FRAMES, height=HEIGHT, width=WIDTH, num_objects=objects, seed=objects)
    state = predictor.init_state(video.frames)
    for obj_id in range(1, objects + 1):
        predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
    stamps = [time.perf_counter()]
    for _ in predictor.propagate(state):
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[1]) / (FRAMES - 1)


def main() -> None:
    model, _ = load_default_model()
    settings = {"without": Quality(), "fast": quality_preset("fast")}
    result: dict[str, object] = {"threads": torch.get_num_threads(), "size": [HEIGHT, WIDTH]}
    for objects in (1, 4):
        for attempt in (1, 2):
            for name, quality in settings.items():
                predictor = Predictor(model, device="cpu", quality=quality)
                result[f"{objects}_objects_{name}_{attempt}_s_per_frame"] = seconds_per_frame(predictor, objects)
        probs, previous = torch.rand(objects, HEIGHT, WIDTH), torch.rand(objects, HEIGHT, WIDTH)
        start = time.perf_counter()
        for _ in range(50):
            within_reach(probs, previous, SEARCH_RADIUS)
        result[f"{objects}_objects_window_alone_ms"] = (time.perf_counter() - start) / 50 * 1000
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
