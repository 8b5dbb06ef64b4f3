"""The batch pre-labeling job: ``python -m jobs.prelabel --input URI --output URI`` (or ``savos-prelabel``).

The driver lists the corpus (streamed, in chunks), skips videos whose masks already exist (and, unless
``--retry-failed``, those with a failure record), and hands each chunk to Ray Data: one row and one block per
video, ``map_batches`` over a pool of :class:`PrelabelActor` (one SAVOS predictor each). Every video writes its
own output; the driver only counts. Exit status: 0 when every video is labelled, 3 when some failed (their
records are in ``OUT/failures/``), 2 on bad options or input.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import JobConfig, parse_config
from .corpus import VideoTask, discover
from .labeler import VideoLabeler, failure_path, mask_path
from .storage import join, put_atomic, read_bytes, resolve

logger = logging.getLogger("jobs.prelabel")

EXIT_SOME_FAILED = 3


class PrelabelActor:
    """A Ray Data actor: loads the model once, then labels the videos of each batch in turn."""

    def __init__(
        self, checkpoint: str | None, scales: Sequence[float], precision: str, output: str, preview_every: int = 0
    ) -> None:
        import torch

        from savos.checkpoint import load_checkpoint, load_default_model
        from savos.inference import Predictor

        if checkpoint is None:
            model, meta = load_default_model()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "model.pt"
                local.write_bytes(read_bytes(checkpoint))
                model, meta = load_checkpoint(local)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        predictor = Predictor(model, device=device, scales=tuple(scales), precision=precision)
        self.labeler = VideoLabeler(predictor, str(meta.get("checkpoint_id", "unknown")), output, preview_every)
        self._counters = _metrics()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        results = []
        for i in range(len(batch["video_id"])):
            task = VideoTask.from_row({key: batch[key][i] for key in ("video_id", "source", "masks")})
            result = self.labeler.label(task)
            if self._counters:
                frames, videos = self._counters
                if result.frames:  # Counter.inc refuses 0
                    frames.inc(result.frames)
                videos.inc(1, tags={"status": result.status})
            results.append(result.to_row())
        return {key: [r[key] for r in results] for key in results[0]} if results else {}


def _metrics() -> tuple[Any, Any] | None:
    """Ray metrics counters (exported where a Prometheus scrape is set up); None outside a Ray worker."""
    try:
        from ray.util.metrics import Counter

        return (
            Counter("savos_frames_labelled", description="frames labelled"),
            Counter("savos_videos", description="videos finished, by status", tag_keys=("status",)),
        )
    except Exception:  # metrics are a nicety; never fail a video for them
        return None


def pending_tasks(config: JobConfig) -> Iterator[VideoTask]:
    """The corpus's videos that still need labelling, as the listing streams in."""
    fs, _ = resolve(config.output)
    tasks = (
        t
        for t in discover(config.input, config.layout)
        if not fs.exists(mask_path(config.output, t.video_id))
        and (config.retry_failed or not fs.exists(failure_path(config.output, t.video_id)))
    )
    return itertools.islice(tasks, config.max_videos) if config.max_videos is not None else tasks


def run(config: JobConfig) -> dict[str, Any]:
    """Label every pending video; returns the run summary (also written to ``OUT/_runs/<run_id>.json``)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=config.address, log_to_driver=True)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    logger.info("run %s: %s -> %s on %s", run_id, config.input, config.output, "GPUs" if gpus else "CPUs")
    start = time.perf_counter()
    counts = {"done": 0, "failed": 0, "frames": 0}
    tasks = pending_tasks(config)
    while chunk := [t.to_row() for t in itertools.islice(tasks, config.chunk_size)]:
        dataset = ray.data.from_items(chunk, override_num_blocks=len(chunk)).map_batches(
            PrelabelActor,
            fn_constructor_kwargs={
                "checkpoint": config.checkpoint,
                "scales": list(config.scales),
                "precision": config.precision,
                "output": config.output,
                "preview_every": config.preview_every,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(config.num_actors, len(chunk))),  # no idle replicas
            num_gpus=config.gpus_per_actor if gpus else 0,
            num_cpus=config.cpus_per_actor,
        )
        last_log = time.perf_counter()
        for row in dataset.iter_rows():
            counts[row["status"]] += 1
            counts["frames"] += int(row["frames"])
            if time.perf_counter() - last_log >= config.progress_every:
                _log_progress(counts, start)
                last_log = time.perf_counter()
    elapsed = time.perf_counter() - start
    summary = _summary(run_id, config, counts, elapsed)
    fs, root = resolve(config.output)
    put_atomic(fs, join(fs, root, "_runs", f"{run_id}.json"), json.dumps(summary, indent=2).encode())
    _log_progress(counts, start)
    return summary


def _log_progress(counts: dict[str, int], start: float) -> None:
    elapsed = max(time.perf_counter() - start, 1e-9)
    logger.info(
        "videos done %d, failed %d; %d frames, %.1f frames/s",
        counts["done"],
        counts["failed"],
        counts["frames"],
        counts["frames"] / elapsed,
    )


def _summary(run_id: str, config: JobConfig, counts: dict[str, int], elapsed: float) -> dict[str, Any]:
    import ray
    import torch

    import savos

    return {
        "run_id": run_id,
        "videos_done": counts["done"],
        "videos_failed": counts["failed"],
        "frames": counts["frames"],
        "seconds": round(elapsed, 3),
        "frames_per_second": round(counts["frames"] / elapsed, 3) if elapsed else None,
        "config": {**config.to_dict(), "scales": list(config.scales)},
        "versions": {"savos": savos.__version__, "torch": torch.__version__, "ray": ray.__version__},
    }


def main(argv: Sequence[str] | None = None) -> int:
    from savos.data.errors import InputError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_config(argv)
    try:
        summary = run(config)
    except InputError as err:
        print(f"savos-prelabel: error: {err}", file=sys.stderr)
        return 2
    if summary["videos_failed"]:
        logger.warning("%d videos failed; see %s", summary["videos_failed"], config.output.rstrip("/") + "/failures/")
        return EXIT_SOME_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
