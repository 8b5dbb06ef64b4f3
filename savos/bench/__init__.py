"""``savos bench``: speed measured as ratios within one run, never as timing tests.

- :mod:`.engine`: the engine against the naive reference path (CPU, fp32), same weights, same inputs.
- :mod:`.lockstep`: object-frames/s of K videos advanced in lock-step, on any device and precision.
- :mod:`.flops`: the model's FLOPs per object-frame, for the fraction of the device's peak reached.
- :mod:`.quality`: what each quality preset costs per frame and per video's adaptation.
- :mod:`.decode`: JPEG decoding on the CPU against the GPU (nvJPEG).
- :mod:`.compaction`: a job output of many small files before and after ``savos compact``.
- :mod:`.cost`: dollars per 1,000 videos and hours per million, from a lock-step JSON and list prices.
- :mod:`.tables`: their Markdown tables.
"""

from .engine import TOLERANCE, bench_engine, format_results, machine, write_json

__all__ = ["TOLERANCE", "bench_engine", "format_results", "machine", "write_json"]
