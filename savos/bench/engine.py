"""The propagation engine against the naive reference path, same weights, same inputs.

Measured as ratios within one run (never as absolute timing tests): object-frames per second of each path for
each object count, and how far their outputs are apart. Two engines are timed: in fp32, where it computes the
naive path's function up to float summation order (checked to :data:`TOLERANCE`), and as configured by default
(bf16 on a CPU that multiplies bf16 natively), checked on the label maps (:data:`LABEL_AGREEMENT`).
"""

from __future__ import annotations

import copy
import json
import platform
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..data.synthetic import make_video
from ..inference import Predictor, probs_to_ids
from ..inference.cpu import native_bf16, retain_heap
from ..inference.naive import naive_propagate
from ..model import SAVOS

TOLERANCE = 1e-4  # fp32 engine: largest |engine - naive| probability (summation order differs, nothing else)
# Reduced-precision engine: mean |engine - naive| probability at most MEAN_TOLERANCE, and at least LABEL_AGREEMENT
# of the pixels the naive path labels with a margin of MARGIN (best label's probability over the runner-up's)
# labelled the same. Near-ties are left out: bf16 may tip them either way, and either label is as right.
MEAN_TOLERANCE = 0.005
LABEL_AGREEMENT = 0.99
MARGIN = 0.1

Outputs = list[tuple[list[int], torch.Tensor]]


def _timed(run: Iterator[tuple[int, list[int], torch.Tensor]]) -> tuple[float, Outputs]:
    start = time.perf_counter()
    outputs = [(ids, probs.float().cpu()) for _, ids, probs in run]
    return time.perf_counter() - start, outputs


def _agreement(a: Outputs, reference: Outputs) -> tuple[float, float]:
    """Over the clip: the fraction of the pixels ``reference`` labels with at least :data:`MARGIN` that ``a``
    labels the same (background or object id), and the fraction of pixels that are so labelled."""
    same = confident = total = 0
    for (ids_a, probs_a), (ids_ref, probs_ref) in zip(a, reference, strict=True):
        labels_a, labels_ref = probs_to_ids(ids_a, probs_a), probs_to_ids(ids_ref, probs_ref)
        full = torch.cat([(1 - probs_ref.sum(0, keepdim=True)).clamp_min(0), probs_ref])  # background first
        top2 = full.topk(2, dim=0).values if len(full) > 1 else torch.cat([full, torch.zeros_like(full)])
        mask = ((top2[0] - top2[1]) >= MARGIN).numpy()
        same += int((labels_a == labels_ref)[mask].sum())
        confident += int(mask.sum())
        total += mask.size
    return (same / confident if confident else 1.0), confident / total


def _differences(a: Outputs, b: Outputs) -> tuple[float, float]:
    """Largest and mean absolute probability difference."""
    diffs = [(pa - pb).abs() for (_, pa), (_, pb) in zip(a, b, strict=True)]
    return max(float(d.max()) for d in diffs), float(torch.cat([d.flatten() for d in diffs]).mean())


def bench_engine(
    model: SAVOS,
    objects: list[int],
    frames: int,
    height: int,
    width: int,
    repeats: int = 1,
    precision: str = "auto",
) -> dict[str, Any]:
    """Engine (fp32, and as configured) against naive for each object count on a synthetic clip."""
    heap_retained = retain_heap()  # process-wide: the naive path gets the same allocator as the engine
    naive_model = copy.deepcopy(model).float().to(memory_format=torch.contiguous_format)  # plain NCHW
    engines = {"engine_fp32": Predictor(model, device="cpu", precision="fp32")}
    configured = Predictor(copy.deepcopy(model), device="cpu", precision=precision)
    if configured.dtype != torch.float32:
        engines["engine"] = configured
    results: dict[str, Any] = {
        "config": {
            "frames": frames,
            "height": height,
            "width": width,
            "objects": objects,
            "precision": str(configured.dtype),
            "channels_last": configured.channels_last,
            "cpu_native_bf16": native_bf16(),
            "heap_retained": heap_retained,
        }
    }
    ratios: dict[str, float] = {}
    rows = []
    for count in objects:
        video = make_video(frames, height, width, num_objects=count, seed=count)
        first = video.first_masks(count)
        seconds = {name: float("inf") for name in ["naive", *engines]}
        outputs: dict[str, Outputs] = {}
        for _ in range(repeats):  # best of: the least disturbed run; the paths take turns
            elapsed, outputs["naive"] = _timed(naive_propagate(naive_model, list(video.frames), first))
            seconds["naive"] = min(seconds["naive"], elapsed)
            for name, predictor in engines.items():
                state = predictor.init_state(list(video.frames))
                for obj_id, mask in first.items():
                    predictor.add_mask(state, 0, obj_id, mask)
                elapsed, outputs[name] = _timed(predictor.propagate(state))
                seconds[name] = min(seconds[name], elapsed)
        object_frames = count * (frames - 1)  # frame 0 is the annotation, not a prediction
        fp32_max, _ = _differences(outputs["engine_fp32"], outputs["naive"])
        row: dict[str, Any] = {
            "objects": count,
            "naive_object_frames_per_s": object_frames / seconds["naive"],
            "engine_fp32_object_frames_per_s": object_frames / seconds["engine_fp32"],
            "engine_fp32_vs_naive": seconds["naive"] / seconds["engine_fp32"],
            "max_abs_difference_fp32": fp32_max,
        }
        name = "engine" if "engine" in engines else "engine_fp32"
        largest, mean = _differences(outputs[name], outputs["naive"])
        agreement, confident = _agreement(outputs[name], outputs["naive"])
        row |= {
            "engine_object_frames_per_s": object_frames / seconds[name],
            "engine_vs_naive": seconds["naive"] / seconds[name],
            "max_abs_difference": largest,
            "mean_abs_difference": mean,
            "label_agreement": agreement,
            "confident_pixels": confident,
            "equal_within_tolerance": fp32_max <= TOLERANCE
            and (
                largest <= TOLERANCE
                if name == "engine_fp32"
                else mean <= MEAN_TOLERANCE and agreement >= LABEL_AGREEMENT
            ),
        }
        rows.append(row)
        ratios[str(count)] = row["engine_vs_naive"]
    results["rows"] = rows
    results["engine_vs_naive"] = ratios
    results["tolerance"] = {
        "fp32_max_abs_difference": TOLERANCE,
        "reduced_precision_mean_abs_difference": MEAN_TOLERANCE,
        "reduced_precision_label_agreement": LABEL_AGREEMENT,
        "label_margin": MARGIN,
    }
    results["units"] = {
        "naive_object_frames_per_s": "object-frames/s",
        "engine_fp32_object_frames_per_s": "object-frames/s",
        "engine_object_frames_per_s": "object-frames/s",
        "engine_vs_naive": "ratio (naive seconds / engine seconds), engine as configured",
        "engine_fp32_vs_naive": "ratio (naive seconds / engine seconds), engine in fp32",
        "max_abs_difference": "probability",
        "mean_abs_difference": "probability",
        "label_agreement": "fraction of the pixels the naive path labels with a margin >= label_margin",
        "confident_pixels": "fraction of pixels",
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
    lines = [
        f"engine vs naive, {config['width']}x{config['height']}, {config['frames']} frames, CPU;"
        f" engine as configured: {config['precision']}, channels_last={config['channels_last']}:"
    ]
    lines.append(
        f"  {'objects':>7} {'naive':>8} {'fp32':>8} {'ratio':>6} {'engine':>8} {'ratio':>6}"
        f" {'fp32 max|d|':>11} {'max|d|':>8} {'labels':>7}   (object-frames/s)"
    )
    for row in results["rows"]:
        lines.append(
            f"  {row['objects']:>7} {row['naive_object_frames_per_s']:>8.2f}"
            f" {row['engine_fp32_object_frames_per_s']:>8.2f} {row['engine_fp32_vs_naive']:>6.2f}"
            f" {row['engine_object_frames_per_s']:>8.2f} {row['engine_vs_naive']:>6.2f}"
            f" {row['max_abs_difference_fp32']:>11.2e} {row['max_abs_difference']:>8.2e} {row['label_agreement']:>7.4f}"
        )
    return "\n".join(lines)


def write_json(path: Any, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
