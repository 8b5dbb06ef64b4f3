"""Where a lock-step step's time goes on a CUDA GPU: resnet50, 480p, K = 16 videos of one object each.

Run on a GPU machine from the repository root: ``python benchmarks/step_profile.py``. Prints the rate under the
profiler, how busy the GPU was, and the operators with the most CPU and GPU time.
"""

from __future__ import annotations

from torch.profiler import ProfilerActivity, profile

from savos.bench.lockstep import run_videos
from savos.data.synthetic import make_video
from savos.inference import Predictor
from savos.model import ModelConfig, build_savos


def main() -> None:
    model = build_savos(ModelConfig(backbone="resnet50"), backbone_weights="none").eval()
    predictor = Predictor(model, device="cuda", precision="bf16")
    clip = make_video(12, 480, 854, num_objects=1, seed=11)
    first = {1: clip.masks[0] == 1}
    run_videos(predictor, clip.frames[:3], first, 16)  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        seconds, object_frames, _ = run_videos(predictor, clip.frames, first, 16)
    print(f"profiled: {object_frames / seconds:.1f} object-frames/s")
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events)
    print(f"wall {seconds * 1e3:.0f} ms, GPU kernels {gpu_us / 1e3:.0f} ms ({gpu_us / 1e6 / seconds:.0%} busy)")
    print(events.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))
    print(events.table(sort_by="self_device_time_total", row_limit=8, max_name_column_width=40))


if __name__ == "__main__":
    main()
