"""``savos bench cost``: what a corpus costs, from a measured lock-step bench JSON and list prices.

The workload: videos of 10 s at 30 fps (300 frames), 480p, with 1 or 4 objects. The measured throughput is the
bench's best object-frames/s over K for each object count, on the GPU the JSON was measured on. Other GPUs are
scaled by their datasheet bf16 tensor FLOP/s: a lower bound on their speed where the measured GPU ran at a few
percent of its peak (the step is then bound by the host, not arithmetic), which the table says.

Prices are inputs, not facts of this code: on-demand list prices per GPU-hour and per storage request, as
written below (``--prices FILE`` replaces any of them with a JSON of the same shape).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .tables import markdown_table

FRAMES_PER_VIDEO = 300  # 10 s at 30 fps
JPEG_BYTES_PER_FRAME = 50_000  # a 480p frame as JPEG, quality about 90: what a worker reads per frame
OUTPUT_BYTES_PER_OBJECT_FRAME = 2_700  # measured: the job's Parquet of the real judo sample, 43,043 B / 16 rows
# The simulated job's videos/s through one driver at the GPU defaults (8 videos a call, 8 actors), every process on
# the 2-core VM (BENCHMARKS.md, "The driver at scale"): a floor for a driver with cores of its own.
DRIVER_VIDEOS_PER_S = 1477.0

# name: (USD per GPU-hour, datasheet dense bf16 tensor TFLOP/s, where the price is from)
PRICES: dict[str, Any] = {
    "gpus": {
        "H100 80GB": [12.29, 989.0, "AWS p5.48xlarge on demand, us-east-1: $98.32/h for 8"],
        "A100 40GB": [4.10, 312.0, "AWS p4d.24xlarge on demand, us-east-1: $32.77/h for 8"],
        "L4": [0.805, 121.0, "AWS g6.xlarge on demand, us-east-1"],
        "A10G": [1.006, 70.0, "AWS g5.xlarge on demand, us-east-1"],
        "T4": [0.526, 65.0, "AWS g4dn.xlarge on demand, us-east-1 (fp16: no bf16)"],
    },
    "storage": {
        "get_per_1000": 0.0004,  # S3 Standard GET/HEAD
        "put_per_1000": 0.005,  # S3 Standard PUT/LIST
        "gb_month": 0.023,  # S3 Standard, first 50 TB
        "egress_gb_cross_region": 0.02,  # only when the GPUs are in another region than the corpus
    },
}


def best_rates(lockstep_json: dict[str, Any]) -> dict[int, float]:
    """Object-frames/s at the best K, per object count, from a ``savos bench lockstep`` JSON."""
    rates: dict[int, float] = {}
    for row in lockstep_json["lockstep"]:
        objects = int(row["objects_per_video"])
        rates[objects] = max(rates.get(objects, 0.0), float(row["object_frames_per_s"]))
    return rates


def measured_gpu(lockstep_json: dict[str, Any]) -> str:
    """The name in :data:`PRICES` of the GPU the bench ran on (by its CUDA device name)."""
    device = str(lockstep_json.get("machine", {}).get("cuda", ""))
    for name in PRICES["gpus"]:
        if name.split()[0] in device:
            return name
    raise ValueError(f"the bench ran on {device or 'no GPU'}, which has no price here: add it with --prices")


def cost_table(lockstep_json: dict[str, Any], prices: dict[str, Any] = PRICES) -> dict[str, Any]:
    """Per GPU and object count: throughput, GPU-hours and dollars per 1,000 videos, storage and egress per 1,000
    videos, and the wall time of 10^6 videos on 8 and 64 GPUs (with whether the driver keeps up)."""
    measured = measured_gpu(lockstep_json)
    rates = best_rates(lockstep_json)
    peak = prices["gpus"][measured][1]
    storage = prices["storage"]
    rows = []
    for gpu, (per_hour, tflops, source) in prices["gpus"].items():
        for objects in (1, 4):
            if objects not in rates:
                continue
            rate = rates[objects] * (1.0 if gpu == measured else tflops / peak)
            object_frames = 1000 * FRAMES_PER_VIDEO * objects
            gpu_hours = object_frames / rate / 3600
            requests = 1000 * (FRAMES_PER_VIDEO + 1)  # each frame, the first-frame mask (resume is one listing)
            puts = 1000 * 2  # the Parquet, and the frame folder's listing
            output_gb = object_frames * OUTPUT_BYTES_PER_OBJECT_FRAME / 1e9
            input_gb = 1000 * FRAMES_PER_VIDEO * JPEG_BYTES_PER_FRAME / 1e9
            videos_per_s_per_gpu = rate / (FRAMES_PER_VIDEO * objects)
            run: dict[str, Any] = {}
            for gpus in (8, 64):
                needed = videos_per_s_per_gpu * gpus
                hours = 1e6 / min(needed, DRIVER_VIDEOS_PER_S) / 3600
                run[f"hours_1m_videos_{gpus}_gpus"] = round(hours, 1)
                run[f"driver_bound_{gpus}_gpus"] = needed > DRIVER_VIDEOS_PER_S
            rows.append(
                {
                    "gpu": gpu,
                    "objects": objects,
                    "object_frames_per_s": round(rate, 1),
                    "measured": gpu == measured,
                    "gpu_hours_per_1000": round(gpu_hours, 3),
                    "gpu_usd_per_1000": round(gpu_hours * per_hour, 2),
                    "requests_usd_per_1000": round(
                        requests / 1000 * storage["get_per_1000"] + puts / 1000 * storage["put_per_1000"], 3
                    ),
                    "output_gb_per_1000": round(output_gb, 2),
                    "output_usd_month_per_1000": round(output_gb * storage["gb_month"], 3),
                    "egress_usd_per_1000_cross_region": round(input_gb * storage["egress_gb_cross_region"], 2),
                    **run,
                    "price_source": source,
                }
            )
    return {"measured_on": measured, "rates": rates, "rows": rows, "prices": prices}


def format_cost(table: dict[str, Any]) -> str:
    """A Markdown table of :func:`cost_table`."""
    headers = [
        "GPU", "objects", "object-frames/s", "GPU $ / 1k videos", "requests $", "output GB (S3 $/month)",
        "cross-region egress $", "10^6 videos on 8 / 64 GPUs",
    ]  # fmt: skip
    rows = []
    for r in table["rows"]:
        how = "measured" if r["measured"] else "scaled by FLOPs"
        hours = [
            f"{r[f'hours_1m_videos_{n}_gpus']} h{' (driver-bound)' if r[f'driver_bound_{n}_gpus'] else ''}"
            for n in (8, 64)
        ]
        rows.append(
            [
                r["gpu"],
                str(r["objects"]),
                f"{r['object_frames_per_s']:g} ({how})",
                f"{r['gpu_usd_per_1000']:.2f}",
                f"{r['requests_usd_per_1000']:.3f}",
                f"{r['output_gb_per_1000']:g} ({r['output_usd_month_per_1000']:.3f})",
                f"{r['egress_usd_per_1000_cross_region']:.2f}",
                f"{hours[0]} / {hours[1]}",
            ]
        )
    return markdown_table(headers, rows)


def load_prices(path: Path | None) -> dict[str, Any]:
    """:data:`PRICES`, with the GPUs and storage prices of ``path`` (a JSON of the same shape) replacing them."""
    if path is None:
        return PRICES
    given = json.loads(path.read_text())
    return {
        "gpus": {**PRICES["gpus"], **given.get("gpus", {})},
        "storage": {**PRICES["storage"], **given.get("storage", {})},
    }
