"""What each quality preset costs: seconds per frame and per video's adaptation, and FLOPs, on this machine.

Each preset runs the engine on a generated 480p clip with 1 and with 4 objects. The first frame's time is the
online adaptation (plus the reference branch); it is timed over ``adapt_steps`` optimiser steps and scaled to the
preset's step count (the steps cost the same each: same clip size, same batch). The other frames give seconds
per frame. FLOPs are counted by PyTorch's counter: per frame, every object through the target step in every view;
per adaptation, one optimiser step (forward and backward) times the steps. Where no GPU is at hand the GPU time
is estimated from the FLOPs at the rate efficientnet_lite0 sustained on an H100 in BENCHMARKS.md.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..data.synthetic import make_video
from ..inference import Predictor
from ..model import SAVOS
from ..quality import Quality
from ..train.online import adapt_decoder
from .flops import step_flops
from .tables import markdown_table

# FLOP/s efficientnet_lite0 sustained on one H100 (BENCHMARKS.md, runs E/F: 335 object-frames/s at K=1, bf16,
# CUDA graphs, 53.9 GFLOP per 480p object-frame): the rate behind the GPU estimates, a lower bound at K > 1.
H100_LITE0_FLOPS = 335 * 53.9e9


def bench_quality(
    model: SAVOS,
    presets: dict[str, Quality],
    *,
    objects: tuple[int, ...] = (1, 4),
    frames: int = 4,
    size: tuple[int, int] = (480, 854),
    adapt_steps: int = 3,
    device: str = "cpu",
) -> dict[str, Any]:
    """Per preset and object count: seconds per frame, adaptation seconds per video, FLOPs, GPU estimates."""
    height, width = size
    rows = []
    for name, quality in presets.items():
        for count in objects:
            video = make_video(num_frames=frames, height=height, width=width, num_objects=count, seed=count)
            timed = (
                quality
                if quality.online is None
                else replace(quality, online=replace(quality.online, steps=adapt_steps))
            )
            predictor = Predictor(model, device=device, quality=timed)
            state = predictor.init_state(video.frames)
            for obj_id in range(1, count + 1):
                predictor.add_mask(state, 0, obj_id, video.masks[0] == obj_id)
            stamps = [time.perf_counter()]
            for _ in predictor.propagate(state):
                stamps.append(time.perf_counter())
            per_frame = (stamps[-1] - stamps[1]) / (frames - 1)
            frame_flops = count * sum(_target_flops(model, size, scale) for scale, _ in predictor.views)
            row: dict[str, Any] = {
                "preset": name,
                "objects": count,
                "passes_per_frame": len(predictor.views),
                "seconds_per_frame": per_frame,
                "gflop_per_frame": frame_flops / 1e9,
                "gpu_estimate_seconds_per_frame": frame_flops / H100_LITE0_FLOPS,
                "adaptation_seconds": None,
                "adaptation_gflop": None,
                "gpu_estimate_adaptation_seconds": None,
            }
            if quality.online is not None:
                steps = quality.online.steps
                row["adaptation_seconds"] = (stamps[1] - stamps[0]) * steps / adapt_steps
                adapt_flops = steps * _adaptation_step_flops(model, video.frames[0], video.masks[0], quality)
                row["adaptation_gflop"] = adapt_flops / 1e9
                row["gpu_estimate_adaptation_seconds"] = adapt_flops / H100_LITE0_FLOPS
            rows.append(row)
    return {"size": list(size), "frames": frames, "adapt_steps_timed": adapt_steps, "rows": rows}


def _target_flops(model: SAVOS, size: tuple[int, int], scale: float) -> int:
    height, width = (max(1, round(side * scale)) for side in size)
    return step_flops(model, height, width, torch.device("cpu"))["target_step"]


def _adaptation_step_flops(model: SAVOS, image: np.ndarray, labels: np.ndarray, quality: Quality) -> int:
    """FLOPs of one optimiser step of online adaptation (forward and backward)."""
    assert quality.online is not None
    with FlopCounterMode(display=False) as counter:
        adapt_decoder(model, model.decoder(), [(image, labels)], replace(quality.online, steps=1))
    return counter.get_total_flops()


def format_quality(results: dict[str, Any]) -> str:
    """A Markdown table of :func:`bench_quality`'s rows."""
    headers = [
        "preset", "objects", "passes/frame", "s/frame (this CPU)", "GFLOP/frame", "GPU est. ms/frame",
        "adaptation s/video (this CPU)", "adaptation GFLOP", "GPU est. adaptation s",
    ]  # fmt: skip
    rows = []
    for r in results["rows"]:
        adapt = r["adaptation_seconds"]
        rows.append(
            [
                str(r["preset"]),
                str(r["objects"]),
                str(r["passes_per_frame"]),
                f"{r['seconds_per_frame']:.2f}",
                f"{r['gflop_per_frame']:.0f}",
                f"{1e3 * r['gpu_estimate_seconds_per_frame']:.1f}",
                *(
                    [f"{adapt:.0f}", f"{r['adaptation_gflop']:.0f}", f"{r['gpu_estimate_adaptation_seconds']:.2f}"]
                    if adapt is not None
                    else ["-", "-", "-"]
                ),
            ]
        )
    return markdown_table(headers, rows)
