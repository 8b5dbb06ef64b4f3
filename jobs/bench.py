"""``python -m savos_job.bench``: the batch job measured against the engine alone, and the job's own costs.

- **throughput**: the Ray job end to end (decode, propagation, RLE, Parquet, storage) on a local corpus, against
  the engine alone on the same videos (decode and propagation, label maps to the host, nothing written), as
  frames/s of each and their ratio. The job's figure is its wall time from the first call: actor start and
  model load included, Ray's own start not. Its labelling rate (from the first video opened to the last one
  written, as the actors report them) leaves out the actor's start, as the engine's figure leaves out its model
  load. The engine runs before and after the job, and their mean is the reference (this machine's speed drifts
  by 10% over minutes).
- **overhead**: the job with a no-op model (each object's probabilities carried forward unchanged) on tiny
  videos: videos/s through the driver and the actors, what the job costs around the model.
- **listing**: the driver's memory while it lists a manifest of 100,000 videos (streamed), and listing speed.

Every figure goes to ``--json`` with its unit and configuration. Ratios are measured within one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import torch

from savos.bench.engine import machine
from savos.checkpoint import load_default_model
from savos.data import FrameFolder
from savos.data.annotations import first_frame_annotation, object_masks
from savos.inference import EngineOptions, FrameResult, Predictor, VideoState
from savos.inference.cpu import tune_process_for_cpu_inference

from .config import JobConfig
from .demo import write_clip
from .output import OutputLocation
from .pending import pending_tasks
from .prelabel import PrelabelActor, lockstep_videos, run

logger = logging.getLogger("savos_job.bench")


def write_corpus(root: Path, videos: int, frames: int, height: int, width: int, objects: int) -> Path:
    """``videos`` synthetic clips in DAVIS layout (JPEG frames, a first-frame mask each) under ``root``."""
    for index in range(videos):
        write_clip(root, f"clip-{index:05d}", frames, height, width, objects, seed=index)
    return root


def engine_alone(corpus: Path, lockstep: int) -> dict[str, Any]:
    """The default model over the corpus in this process: frames decoded ahead, label maps to the host."""
    model, _ = load_default_model()
    tune_process_for_cpu_inference()  # as the job's actors are
    predictor = Predictor(model, device="auto")

    def videos() -> Any:
        for folder in sorted((corpus / "JPEGImages").iterdir()):
            frames = FrameFolder(folder)
            first = first_frame_annotation(corpus / "Annotations" / folder.name / "00000.png", frames)
            state = predictor.init_state(frames)
            for obj_id, mask in object_masks(first[0]).items():
                predictor.add_mask(state, 0, obj_id, mask)
            yield folder.name, state

    frames = 0
    start = time.perf_counter()
    for event in predictor.propagate_many(videos(), max_active=lockstep):
        if isinstance(event, FrameResult):
            event.labels_and_scores()
            frames += 1
        elif event.error is not None:
            raise event.error
    seconds = time.perf_counter() - start
    return {"frames": frames, "seconds": seconds, "frames_per_s": frames / seconds, "device": str(predictor.device)}


def job_run(corpus: Path, output: Path, actor: type[PrelabelActor] = PrelabelActor, **options: Any) -> dict[str, Any]:
    config = JobConfig(input=str(corpus), output=str(output), **options)
    start = time.perf_counter()
    summary = run(config, actor)
    seconds = time.perf_counter() - start
    if summary["videos_failed"] or summary["videos_unrecorded"]:
        raise RuntimeError(f"the benchmark corpus should label cleanly: {summary}")
    return {
        "videos": summary["videos_done"],
        "frames": summary["frames"],
        "seconds": seconds,
        "frames_per_s": summary["frames"] / seconds,
        "videos_per_s": summary["videos_done"] / seconds,
        "seconds_to_first_video": summary["seconds_to_first_video"],
        "labelling_seconds": summary["labelling_seconds"],
        "labelling_frames_per_s": summary["labelling_frames_per_second"],
    }


def throughput(work: Path, videos: int, frames: int, height: int, width: int, objects: int) -> dict[str, Any]:
    corpus = write_corpus(work / "corpus", videos, frames, height, width, objects)
    gpu = torch.cuda.is_available()
    cpus = float(torch.get_num_threads())
    lockstep = lockstep_videos(JobConfig(input="", output=""), gpu)
    options: dict[str, Any] = {"num_actors": 1, "cpus_per_actor": 1.0 if gpu else cpus}
    engine_before = engine_alone(corpus, lockstep)
    job = job_run(corpus, work / "out", **options)
    engine_after = engine_alone(corpus, lockstep)
    engine_fps = (engine_before["frames_per_s"] + engine_after["frames_per_s"]) / 2
    return {
        "config": {"videos": videos, "frames": frames, "height": height, "width": width, "objects": objects},
        "lockstep": lockstep,
        "engine_before": engine_before,
        "engine_after": engine_after,
        "engine_frames_per_s": engine_fps,
        "job": job,
        "job_vs_engine": job["frames_per_s"] / engine_fps,
        "job_labelling_vs_engine": job["labelling_frames_per_s"] / engine_fps,
    }


class NoOpActor(PrelabelActor):
    """The job's actor with a model that costs nothing: what is left is the job around it."""

    def make_predictor(self, job: JobConfig) -> tuple[Predictor, dict[str, Any]]:
        model, _ = load_default_model()
        # Its network never runs: no copy of the model with folded batch norms.
        options = EngineOptions(max_pixels=job.max_pixels, fold_batch_norms=False)
        predictor = CarryForward(model, device="cpu", precision="fp32", options=options)
        return predictor, {"checkpoint_id": "no-op"}


class CarryForward(Predictor):
    """Each object's previous probabilities as its prediction: the engine's bookkeeping without the network."""

    def _predict_many(self, steps: list[Any]) -> list[torch.Tensor]:
        return [step.guidance[:, 0] for step in steps]

    def _add_references(self, state: VideoState, image: torch.Tensor, masks: torch.Tensor) -> None:
        return None


def overhead(work: Path, videos: int, actors: int) -> dict[str, Any]:
    corpus = write_corpus(work / "tiny", videos, frames=4, height=64, width=96, objects=2)
    job = job_run(corpus, work / "tiny-out", NoOpActor, num_actors=actors, cpus_per_actor=1.0)
    return {"config": {"videos": videos, "frames": 4, "height": 64, "width": 96, "actors": actors}, "job": job}


def listing(work: Path, videos: int) -> dict[str, Any]:
    """Peak Python memory of the driver while it streams a ``videos``-row manifest through
    :func:`~savos_job.pending.pending_tasks` (which checks each video's outputs on storage), and per video."""
    manifest = work / "manifest.jsonl"
    with manifest.open("w") as f:
        for index in range(videos):
            row = {"video_id": f"video-{index:07d}", "video": f"s3://corpus/{index:07d}.mp4", "masks": "s3://m/"}
            f.write(json.dumps(row) + "\n")
    config = JobConfig(input=str(manifest), output=str(work / "listing-out"), allow_schemes=("s3",))
    tracemalloc.start()
    start = time.perf_counter()
    listed = sum(1 for _ in pending_tasks(config, OutputLocation.open(config.output, config.retry_policy())))
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "videos": listed,
        "seconds": seconds,
        "videos_per_s": listed / seconds,
        "peak_bytes": peak,
        "peak_bytes_per_video": peak / listed,
    }


UNITS = {
    "frames_per_s": "frames/s",
    "videos_per_s": "videos/s",
    "job_vs_engine": "ratio (job frames/s end to end / engine frames/s, mean of before and after; same videos)",
    "job_labelling_vs_engine": "ratio (job frames/s from the first video opened to the last written / engine)",
    "seconds_to_first_video": "seconds (from the job's start to its first video opened: actor start, model load)",
    "peak_bytes": "bytes (tracemalloc peak, Python allocations of the driver)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m savos_job.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=48, help="throughput: corpus size (default: 48)")
    parser.add_argument("--frames", type=int, default=24, help="throughput: frames per video (default: 24)")
    parser.add_argument("--size", type=int, nargs=2, default=[240, 432], metavar=("H", "W"))
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--overhead-videos", type=int, default=200, help="no-op run: tiny videos (default: 200)")
    parser.add_argument("--actors", type=int, default=2, help="no-op run: actors (default: 2)")
    parser.add_argument("--manifest-videos", type=int, default=100_000)
    parser.add_argument("--only", choices=["throughput", "overhead", "listing"], nargs="+")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    wanted = set(args.only or ["throughput", "overhead", "listing"])
    results: dict[str, Any] = {"units": UNITS, "machine": machine()}
    import ray

    with tempfile.TemporaryDirectory(prefix="savos-jobs-bench-") as tmp:
        work = Path(tmp)
        if "listing" in wanted:
            results["listing"] = listing(work, args.manifest_videos)
            print(f"listing: {json.dumps(results['listing'])}")
        if wanted & {"throughput", "overhead"}:
            ray.init(include_dashboard=False, log_to_driver=False)  # Ray's start is not the job's cost
        try:
            if "throughput" in wanted:
                height, width = args.size
                results["throughput"] = throughput(work, args.videos, args.frames, height, width, args.objects)
                print(f"throughput: {json.dumps(results['throughput'])}")
            if "overhead" in wanted:
                results["overhead"] = overhead(work, args.overhead_videos, args.actors)
                print(f"overhead: {json.dumps(results['overhead'])}")
        finally:
            if ray.is_initialized():
                ray.shutdown()
    if args.json:
        args.json.write_text(
            json.dumps(results, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
