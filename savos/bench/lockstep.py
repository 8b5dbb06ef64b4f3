"""Object-frames/s of the engine advancing K videos in lock-step (:meth:`Predictor.propagate_many`).

Each run labels ``2 K`` videos of staggered lengths, so videos end at different steps and new ones join while
others are mid-way, as in the batch job. The label map of every frame is brought back to the host (what the
job needs), so the figure includes the device-to-host traffic and the synchronisation it costs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..data.synthetic import make_video
from ..inference import FrameResult, Predictor, VideoState
from .flops import datasheet_peak, measured_matmul_peak, step_flops

UNITS = {
    "object_frames_per_s": "object-frames/s",
    "flops_per_s": "FLOP/s (target step only)",
    "fraction_of_peak": "of the datasheet dense bf16 peak",
    "flops": "FLOP per object (target step every frame, reference once per video)",
}


def _videos(
    predictor: Predictor, frames: np.ndarray, first: dict[int, np.ndarray], count: int
) -> Iterator[tuple[int, VideoState]]:
    """``count`` videos over the same clip, lengths staggered by up to a quarter of it."""
    step = max(1, len(frames) // 8)
    for index in range(count):
        state = predictor.init_state(list(frames[: len(frames) - (index % 3) * step]))
        for obj_id, mask in first.items():
            predictor.add_mask(state, 0, obj_id, mask)
        yield index, state


def run_videos(
    predictor: Predictor, frames: np.ndarray, first: dict[int, np.ndarray], k: int
) -> tuple[float, int, int]:
    """Seconds, object-frames predicted and videos for one lock-step pass over ``2 k`` videos."""
    object_frames = 0
    if predictor.device.type == "cuda":
        torch.cuda.synchronize(predictor.device)
    start = time.perf_counter()
    for event in predictor.propagate_many(_videos(predictor, frames, first, 2 * k), max_active=k):
        if isinstance(event, FrameResult):
            event.labels_and_scores()  # to the host, as the job does
            object_frames += len(event.obj_ids) if event.frame_idx > 0 else 0
        elif event.error is not None:
            raise event.error
    return time.perf_counter() - start, object_frames, 2 * k


def bench_lockstep(
    predictor: Predictor,
    ks: Sequence[int],
    objects: Sequence[int],
    frames: int,
    height: int,
    width: int,
    flops_per_object_frame: int | None = None,
    peak_flops: float | None = None,
) -> list[dict[str, Any]]:
    """One row per (objects per video, K): object-frames/s and, given the FLOPs, the FLOP/s reached."""
    clip = make_video(frames, height, width, num_objects=max(objects), seed=11)
    rows = []
    for count in objects:
        first = clip.first_masks(count)
        for k in ks:
            # Warm-up: kernels chosen, graphs captured, memory pooled. On a GPU a whole pass, so that every batch
            # bucket the run meets has its graph (and compilation: seconds each) and the pinned-memory pool has
            # grown to what the run holds in flight before anything is timed; on a CPU a few frames suffice.
            started = time.perf_counter()
            whole = predictor.compiled or predictor.device.type == "cuda"
            run_videos(predictor, clip.frames if whole else clip.frames[:3], first, k)
            warmup = time.perf_counter() - started
            seconds, object_frames, videos = run_videos(predictor, clip.frames, first, k)
            row: dict[str, Any] = {
                "objects_per_video": count,
                "k": k,
                "videos": videos,
                "object_frames": object_frames,
                "seconds": seconds,
                "object_frames_per_s": object_frames / seconds,
                "warmup_seconds": warmup,
            }
            if flops_per_object_frame is not None:
                row["flops_per_s"] = row["object_frames_per_s"] * flops_per_object_frame
                if peak_flops:
                    row["fraction_of_peak"] = row["flops_per_s"] / peak_flops
            rows.append(row)
    return rows


def lockstep_report(
    predictor: Predictor, ks: Sequence[int], objects: Sequence[int], frames: int, height: int, width: int
) -> dict[str, Any]:
    """:func:`bench_lockstep` with the model's FLOPs, the device's peaks, the configuration and the units."""
    flops = step_flops(predictor.model, height, width, predictor.device)
    peaks: dict[str, float | None] = {"datasheet_bf16": None, "measured_bf16_matmul": None}
    if predictor.device.type == "cuda":
        peaks["datasheet_bf16"] = datasheet_peak(torch.cuda.get_device_name(predictor.device))
        peaks["measured_bf16_matmul"] = measured_matmul_peak(predictor.device)
    rows = bench_lockstep(
        predictor, ks, objects, frames, height, width, flops["target_step"], peak_flops=peaks["datasheet_bf16"]
    )
    config = {
        "frames": frames,
        "height": height,
        "width": width,
        "device": str(predictor.device),
        "precision": str(predictor.dtype),
        "channels_last": predictor.channels_last,
        "compile": predictor.compiled,
        "cuda_graphs": predictor.cuda_graphs,
        "pin_memory": predictor.pin_memory,
        "max_pass_pixels": predictor.max_pass_pixels,
    }
    return {"config": config, "lockstep": rows, "flops": flops, "peak_flops_per_s": peaks, "units": UNITS}


def format_lockstep(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [
        f"lock-step, {config.get('model', '?')}, {config['width']}x{config['height']}, {config['frames']} frames,"
        f" {config['device']} {config['precision']}, channels_last={config['channels_last']},"
        f" compile={config['compile']}, cuda_graphs={config.get('cuda_graphs')},"
        f" {results['flops']['target_step'] / 1e9:.1f} GFLOP per object-frame",
        f"  {'objects':>7} {'K':>3} {'obj-frames/s':>13} {'TFLOP/s':>8} {'of peak':>8}",
    ]
    for row in results["lockstep"]:
        tflops = f"{row['flops_per_s'] / 1e12:8.1f}" if "flops_per_s" in row else f"{'-':>8}"
        peak = f"{row['fraction_of_peak']:8.1%}" if "fraction_of_peak" in row else f"{'-':>8}"
        rate = row["object_frames_per_s"]
        lines.append(f"  {row['objects_per_video']:>7} {row['k']:>3} {rate:>13.1f} {tflops} {peak}")
    return "\n".join(lines)
