"""Where a lock-step step's time goes on a CUDA GPU: resnet50, 480p, K videos of some objects each.

Run on a GPU machine from the repository root, e.g. ``python benchmarks/step_profile.py --objects 4 --compile``.
Prints the rate under the profiler, how busy the GPU was, the operators with the most CPU and GPU time, and
(``--sync-debug``) every place where the host waited for the GPU during the timed pass.
"""

from __future__ import annotations

import argparse
import collections
import warnings

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from savos.bench.lockstep import run_videos
from savos.data.synthetic import make_video
from savos.inference import EngineOptions, Predictor
from savos.model import ModelConfig, build_savos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1, help="objects per video (default: 1)")
    parser.add_argument("--k", type=int, default=16, help="videos in lock-step (default: 16)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default: 12)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the target step (warm-up: a full pass)")
    parser.add_argument("--sync-debug", action="store_true", help="list the host's waits for the GPU")
    args = parser.parse_args()

    model = build_savos(ModelConfig(backbone="resnet50"), backbone_weights="none").eval()
    predictor = Predictor(model, device="cuda", precision="bf16", options=EngineOptions(compile=args.compile))
    clip = make_video(args.frames, 480, 854, num_objects=args.objects, seed=11)
    first = clip.first_masks(args.objects)
    run_videos(predictor, clip.frames if args.compile else clip.frames[:3], first, args.k)  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        seconds, object_frames, _ = run_videos(predictor, clip.frames, first, args.k)
    print(f"profiled: {object_frames / seconds:.1f} object-frames/s")
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events)
    print(f"wall {seconds * 1e3:.0f} ms, GPU kernels {gpu_us / 1e3:.0f} ms ({gpu_us / 1e6 / seconds:.0%} busy)")
    print(events.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))
    print(events.table(sort_by="self_device_time_total", row_limit=8, max_name_column_width=40))
    if args.sync_debug:
        print_synchronisations(predictor, clip.frames, first, args.k)


def print_synchronisations(predictor: Predictor, frames: np.ndarray, first: dict[int, np.ndarray], k: int) -> None:
    """One unprofiled pass with CUDA's sync debug mode: each distinct place that waited, and how often."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_videos(predictor, frames, first, k)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    places = collections.Counter(f"{w.filename}:{w.lineno}: {str(w.message)[:80]}" for w in caught)
    print(f"host waits for the GPU: {sum(places.values())}")
    for place, count in places.most_common(12):
        print(f"  {count:6d}  {place}")


if __name__ == "__main__":
    main()
