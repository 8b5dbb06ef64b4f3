"""The propagation engine against the naive reference path, same weights, same inputs.

Measured as ratios within one run (never as absolute timing tests): object-frames per second of each path for
each object count, and the largest difference between their probabilities (they compute the same function).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.synthetic import make_video
from ..inference import Predictor
from ..inference.naive import naive_propagate
from ..model import SAVOS

TOLERANCE = 1e-4  # largest |engine - naive| probability allowed: float summation order differs, nothing else


def _timed(run: Any) -> tuple[float, list[torch.Tensor]]:
    start = time.perf_counter()
    outputs = [probs.float().cpu() for _, _, probs in run]
    return time.perf_counter() - start, outputs


def bench_engine(
    model: SAVOS, objects: list[int], frames: int, height: int, width: int, repeats: int = 1
) -> dict[str, Any]:
    """Engine vs naive for each object count on a synthetic clip; returns every figure with its unit."""
    results: dict[str, Any] = {"config": {"frames": frames, "height": height, "width": width, "objects": objects}}
    ratios: dict[str, float] = {}
    rows = []
    for count in objects:
        video = make_video(frames, height, width, num_objects=count, seed=count)
        first = {i: video.masks[0] == i for i in range(1, count + 1)}
        if any(not m.any() for m in first.values()):
            raise RuntimeError(f"synthetic clip with {count} objects hides one in frame 0; change the seed")
        predictor = Predictor(model, device="cpu", precision="fp32")
        engine_s, naive_s = float("inf"), float("inf")
        for _ in range(repeats):  # best of: the least disturbed run
            state = predictor.init_state(list(video.frames))
            for obj_id, mask in first.items():
                predictor.add_mask(state, 0, obj_id, mask)
            seconds, engine_out = _timed(predictor.propagate(state))
            engine_s = min(engine_s, seconds)
            seconds, naive_out = _timed(naive_propagate(model, list(video.frames), first))
            naive_s = min(naive_s, seconds)
        difference = max(float((a - b).abs().max()) for a, b in zip(engine_out, naive_out, strict=True))
        object_frames = count * (frames - 1)  # frame 0 is the annotation, not a prediction
        row = {
            "objects": count,
            "engine_object_frames_per_s": object_frames / engine_s,
            "naive_object_frames_per_s": object_frames / naive_s,
            "engine_vs_naive": naive_s / engine_s,
            "max_abs_difference": difference,
            "equal_within_tolerance": difference <= TOLERANCE,
        }
        rows.append(row)
        ratios[str(count)] = row["engine_vs_naive"]
    results["rows"] = rows
    results["engine_vs_naive"] = ratios
    results["units"] = {
        "engine_object_frames_per_s": "object-frames/s",
        "naive_object_frames_per_s": "object-frames/s",
        "engine_vs_naive": "ratio (naive seconds / engine seconds)",
        "max_abs_difference": "probability",
    }
    results["machine"] = machine()
    return results


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def format_results(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [f"engine vs naive, {config['width']}x{config['height']}, {config['frames']} frames, CPU fp32:"]
    lines.append(f"  {'objects':>7} {'engine obj-fr/s':>16} {'naive obj-fr/s':>15} {'ratio':>6} {'max |diff|':>11}")
    for row in results["rows"]:
        engine, naive = row["engine_object_frames_per_s"], row["naive_object_frames_per_s"]
        lines.append(
            f"  {row['objects']:>7} {engine:>16.2f} {naive:>15.2f}"
            f" {row['engine_vs_naive']:>6.2f} {row['max_abs_difference']:>11.2e}"
        )
    return "\n".join(lines)


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
