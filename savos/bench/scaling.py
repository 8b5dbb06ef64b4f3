"""How the engine's cost grows: object-frames/s against objects per video and against frame size.

Objects: 1, 2, 4, 8 per video at 480p (all objects of a frame go through the network in one batch, so the
cost per object-frame should stay flat or fall). Resolution: 240p, 480p and 1080p with one object; frames
above the predictor's pixel budget (``max_pixels``) go through the network downscaled, which is what caps the
cost of 1080p and above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.synthetic import make_video
from ..inference import Predictor
from .lockstep import run_videos

OBJECTS = (1, 2, 4, 8)
RESOLUTIONS = {"240p": (240, 426), "480p": (480, 854), "1080p": (1080, 1920)}


def _rate(predictor: Predictor, height: int, width: int, objects: int, frames: int) -> dict[str, Any]:
    clip = make_video(frames, height, width, num_objects=objects, seed=5)
    first = clip.first_masks(objects)
    run_videos(predictor, clip.frames[:2], first, 1)  # warm-up
    seconds, object_frames, _ = run_videos(predictor, clip.frames, first, 1)
    pixels = height * width
    budget = predictor.max_pixels
    return {
        "height": height,
        "width": width,
        "objects": objects,
        "network_pixels": min(pixels, budget) if budget else pixels,
        "object_frames_per_s": object_frames / seconds,
        "frames_per_s": object_frames / objects / seconds,
    }


def scaling_report(
    predictor: Predictor,
    frames: int = 6,
    objects: tuple[int, ...] = OBJECTS,
    resolutions: dict[str, tuple[int, int]] = RESOLUTIONS,
    objects_at: tuple[int, int] = RESOLUTIONS["480p"],
) -> dict[str, Any]:
    """Both sweeps, one video at a time (2 videos per point, staggered, as :mod:`.lockstep` runs K=1)."""
    by_objects = [_rate(predictor, *objects_at, count, frames) for count in objects]
    by_resolution = [{"name": name, **_rate(predictor, h, w, 1, frames)} for name, (h, w) in resolutions.items()]
    config = {
        "frames": frames,
        "device": str(predictor.device),
        "precision": str(predictor.dtype),
        "channels_last": predictor.channels_last,
        "cuda_graphs": predictor.cuda_graphs,
        "max_pixels": predictor.max_pixels,
    }
    units = {"object_frames_per_s": "object-frames/s", "frames_per_s": "frames/s", "network_pixels": "pixels"}
    return {"config": config, "by_objects": by_objects, "by_resolution": by_resolution, "units": units}


def format_scaling(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [f"scaling, {config['device']} {config['precision']}, pixel budget {config['max_pixels']}:"]
    lines += [
        f"  {row['width']}x{row['height']}, {row['objects']} objects: {row['object_frames_per_s']:8.2f} object-frames/s"
        f" ({row['frames_per_s']:.2f} frames/s)"
        for row in results["by_objects"]
    ]
    lines += [
        f"  {row['name']:>5}, 1 object: {row['object_frames_per_s']:8.2f} object-frames/s"
        f" (network input {row['network_pixels']:,} pixels)"
        for row in results["by_resolution"]
    ]
    return "\n".join(lines)


def plot_scaling(results: dict[str, Any], path: Path, title: str) -> None:
    """Two panels as a PNG: object-frames/s against objects, and against resolution."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    objects = [row["objects"] for row in results["by_objects"]]
    left.plot(objects, [row["object_frames_per_s"] for row in results["by_objects"]], "o-", label="object-frames/s")
    left.plot(objects, [row["frames_per_s"] for row in results["by_objects"]], "s--", label="frames/s")
    size = f"{results['by_objects'][0]['width']}x{results['by_objects'][0]['height']}"
    left.set(xlabel=f"objects per video ({size})", ylabel="per second", xscale="log", xticks=objects)
    left.set_xticklabels([str(n) for n in objects])
    left.minorticks_off()
    left.set_ylim(bottom=0)
    left.legend()
    names = [row["name"] for row in results["by_resolution"]]
    right.bar(names, [row["object_frames_per_s"] for row in results["by_resolution"]], color="tab:blue")
    right.set(xlabel="frame size (1 object)", ylabel="object-frames/s")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
