"""The batch pre-labeling job: ``python -m jobs.prelabel --input URI --output URI`` (or ``savos-prelabel``).

The driver lists the corpus (streamed, in chunks), skips videos whose masks already exist (and, unless
``--retry-failed``, those with a failure record), and hands each chunk to Ray Data: one row and one block per
video, ``map_batches`` over a pool of :class:`PrelabelActor` (one SAVOS predictor each). Every video writes its
own output; the driver only counts. Exit status: 0 when every video is labelled, 3 when some failed (their
records are in ``OUT/failures/``), 4 when storage failed past the retry budget (those videos are left for a
rerun), 2 on bad options or input.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fsspec.implementations.local import LocalFileSystem

from savos.data.errors import InputError
from savos.inference.cpu import HEAP_ENV
from savos.inference.prefetch import prefetch
from savos.io.schema import display_id

from . import storage
from .config import JobConfig, parse_config
from .corpus import VideoTask, discover
from .labeler import VideoLabeler, failure_path, mask_path
from .storage import join, put_atomic, read_bytes, resolve

if TYPE_CHECKING:
    from savos.inference import Predictor

logger = logging.getLogger("jobs.prelabel")

EXIT_SOME_FAILED = 3
EXIT_STORAGE = 4  # storage stayed down: some videos have neither masks nor a failure record (rerun to finish)


class PrelabelActor:
    """A Ray Data actor: loads the model once, then labels the videos of each batch in turn.

    All of its torch work (loading the model and every batch) runs on one thread of its own. Ray Data constructs
    the actor on one thread and calls it from another; torch's CPU kernels then run OpenMP teams from both, and
    libgomp, seeing more of its threads than CPUs, makes them sleep between parallel regions instead of spinning:
    the job ran at 0.75x the engine's speed on a 2-core CPU for that alone (BENCHMARKS.md, "The batch job").
    """

    def __init__(self, config: dict[str, Any]) -> None:
        job = JobConfig(**config)
        storage.RETRY_ATTEMPTS = job.storage_retries  # this worker's storage calls
        self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="savos-compute")
        self.labeler = self._compute.submit(self._make_labeler, job).result()
        self._counters = _metrics()

    def _make_labeler(self, job: JobConfig) -> VideoLabeler:
        import torch

        if not torch.cuda.is_available():
            # As many compute threads as CPUs the actor was given, before the first kernel makes a team (Ray's
            # OMP_NUM_THREADS comes after torch has started).
            torch.set_num_threads(max(1, int(job.cpus_per_actor)))
        predictor, model_id = self.make_predictor(job)
        lockstep = lockstep_videos(job, predictor.device.type == "cuda")
        return VideoLabeler(predictor, model_id, job.output, job.preview_every, job.max_objects, lockstep)

    def make_predictor(self, job: JobConfig) -> tuple[Predictor, str]:
        """The checkpoint's model on this actor's device; and the checkpoint's id, written with every mask."""
        from savos.checkpoint import load_checkpoint, load_default_model
        from savos.inference import Predictor

        if job.checkpoint is None:
            model, meta = load_default_model()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "model.pt"
                local.write_bytes(read_bytes(job.checkpoint))
                model, meta = load_checkpoint(local)
        predictor = Predictor(
            model, device="auto", scales=tuple(job.scales), precision=job.precision, max_pixels=job.max_pixels
        )
        return predictor, str(meta.get("checkpoint_id", "unknown"))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        tasks = [VideoTask.from_json(str(text)) for text in batch["task"]]
        return self._compute.submit(self._label, tasks).result()

    def _label(self, tasks: list[VideoTask]) -> dict[str, list[Any]]:
        results = []
        for result in self.labeler.label_many(tasks):
            if self._counters:
                frames, videos = self._counters
                if result.frames:  # Counter.inc refuses 0
                    frames.inc(result.frames)
                videos.inc(1, tags={"status": result.status})
            results.append(result.to_row())
        return {key: [r[key] for r in results] for key in results[0]} if results else {}


def lockstep_videos(config: JobConfig, gpu: bool) -> int:
    """How many videos an actor advances together: on a GPU, batching across videos is what fills it."""
    if config.lockstep > 0:
        return config.lockstep
    return 8 if gpu else 1


CALLS_PER_LOCKSTEP = 4  # an actor call takes this many lock-step widths of videos, so videos join as others end


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


def pending_tasks(config: JobConfig, duplicates: list[str] | None = None) -> Iterator[VideoTask]:
    """The corpus's videos that still need labelling, as the listing streams in.

    A video id seen before in this listing (a manifest may repeat one) is skipped, and added to ``duplicates``:
    the first row with an id is the one labelled. The ids seen are held as a set (tens of bytes per video).
    """
    fs, _ = resolve(config.output)
    seen: set[str] = set()

    def first_time(task: VideoTask) -> bool:
        if task.video_id in seen:
            logger.warning("video id %r appears again in the corpus: this row is skipped", task.video_id)
            if duplicates is not None:
                duplicates.append(display_id(task.video_id))
            return False
        seen.add(task.video_id)
        return True

    tasks = (
        t
        for t in discover(config.input, config.layout)
        if first_time(t)
        and not storage.exists(fs, mask_path(config.output, t.video_id))
        and (config.retry_failed or not storage.exists(fs, failure_path(config.output, t.video_id)))
    )
    return itertools.islice(tasks, config.max_videos) if config.max_videos is not None else tasks


def check_output_outside_input(config: JobConfig) -> None:
    """Refuse an output equal to or inside the input (its files would become corpus videos on a rerun, and a
    mistake could overwrite input), unless ``allow_output_in_input``."""
    in_fs, in_root = resolve(config.input)
    out_fs, out_root = resolve(config.output)
    if config.allow_output_in_input or type(in_fs) is not type(out_fs):
        return
    inside = out_root == in_root or out_root.startswith(in_root.rstrip("/") + "/")
    if inside:
        raise InputError(config.output, f"the output is inside the input {config.input}; pass --allow-output-in-input")


def run(config: JobConfig, actor: type[PrelabelActor] = PrelabelActor) -> dict[str, Any]:
    """Label every pending video; returns the run summary (also written to ``OUT/_runs/<run_id>.json``).

    ``actor`` is the Ray Data actor class (the benchmark passes one with a no-op model)."""
    import ray

    check_output_outside_input(config)
    storage.RETRY_ATTEMPTS = config.storage_retries
    remove_stale_temporaries(config.output)
    if not ray.is_initialized():
        ray.init(address=config.address, log_to_driver=True)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    logger.info("run %s: %s -> %s on %s", run_id, config.input, config.output, "GPUs" if gpus else "CPUs")
    start, started_at = time.perf_counter(), time.time()
    counts = {"done": 0, "failed": 0, "unrecorded": 0, "frames": 0}
    span = _Span()
    duplicates: list[str] = []
    tasks = pending_tasks(config, duplicates)
    per_call = lockstep_videos(config, gpus) * CALLS_PER_LOCKSTEP
    # CPU actors start with glibc told to keep freed memory (savos.inference.cpu): it must be set before the
    # process starts, as Ray's own threads have their allocator arenas before the actor's code runs. Ray merges
    # these with the job's.
    cpu_only: dict[str, Any] = {} if gpus else {"runtime_env": {"env_vars": HEAP_ENV}}
    # The next chunk is listed (and its outputs checked on storage) while this one runs, not between them.
    for chunk in prefetch(_chunks(tasks, config.chunk_size), depth=1):
        actors = min(config.num_actors, len(chunk))  # no idle replicas
        dataset = ray.data.from_items(chunk, override_num_blocks=len(chunk)).map_batches(
            actor,
            fn_constructor_kwargs={"config": config.to_dict()},
            batch_size=max(1, min(per_call, len(chunk) // actors)),  # small chunks still spread over every actor
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=config.gpus_per_actor if gpus else 0,
            num_cpus=config.cpus_per_actor,
            **cpu_only,
        )
        last_log = time.perf_counter()
        for row in dataset.iter_rows():
            counts[row["status"]] += 1
            counts["frames"] += int(row["frames"])
            span.add(row["started"], row["finished"])
            if time.perf_counter() - last_log >= config.progress_every:
                _log_progress(counts, start)
                last_log = time.perf_counter()
    elapsed = time.perf_counter() - start
    summary = _summary(run_id, config, counts, elapsed)
    summary.update(span.summary(started_at, counts["frames"]))
    summary["duplicate_ids_skipped"] = duplicates
    fs, root = resolve(config.output)
    try:
        put_atomic(fs, join(fs, root, "_runs", f"{run_id}.json"), json.dumps(summary, indent=2).encode())
    except Exception as err:  # the summary is a report; the videos' own outputs are what count
        logger.error("cannot write the run summary to %s: %s", config.output, err)
    _log_progress(counts, start)
    return summary


class _Span:
    """From the first video opened to the last one finished (wall clock, from the actors' rows): the job's
    labelling time, without the actors' start (how long that took is reported beside it)."""

    def __init__(self) -> None:
        self.first, self.last = float("inf"), float("-inf")

    def add(self, started: float, finished: float) -> None:
        self.first, self.last = min(self.first, started), max(self.last, finished)

    def summary(self, run_started: float, frames: int) -> dict[str, float | None]:
        if self.last <= self.first:
            return {"seconds_to_first_video": None, "labelling_seconds": None, "labelling_frames_per_second": None}
        seconds = self.last - self.first
        return {
            "seconds_to_first_video": round(self.first - run_started, 3),
            "labelling_seconds": round(seconds, 3),
            "labelling_frames_per_second": round(frames / seconds, 3),
        }


def _chunks(tasks: Iterator[VideoTask], size: int) -> Iterator[list[dict[str, str]]]:
    while chunk := [{"task": t.to_json()} for t in itertools.islice(tasks, size)]:
        yield chunk


def remove_stale_temporaries(output: str) -> None:
    """Delete temporary files a killed run left on a local output (an object store has none: a PUT is whole)."""
    fs, root = resolve(output)
    if not isinstance(fs, LocalFileSystem) or not fs.exists(root):
        return
    for path in fs.find(root):
        if path.endswith(storage.TEMPORARY_SUFFIX) and os.path.basename(path).startswith("."):
            logger.info("removing %s, left by an interrupted run", path)
            fs.rm_file(path)


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
        "videos_unrecorded": counts["unrecorded"],
        "frames": counts["frames"],
        "seconds": round(elapsed, 3),
        "frames_per_second": round(counts["frames"] / elapsed, 3) if elapsed else None,
        "config": {**config.to_dict(), "scales": list(config.scales)},
        "versions": {"savos": savos.__version__, "torch": torch.__version__, "ray": ray.__version__},
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_config(argv)
    try:
        summary = run(config)
    except InputError as err:
        print(f"savos-prelabel: error: {err}", file=sys.stderr)
        return 2
    except PermissionError as err:  # refused credentials: the message names the bucket, never the keys
        print(f"savos-prelabel: error: access denied ({err}); check the storage credentials", file=sys.stderr)
        return 2
    except Exception as err:
        if not storage.is_transient(err):
            raise
        logger.error(
            "storage failed past the retry budget (%s: %s); the run stopped. Nothing was lost: rerun with the same "
            "output to finish it.",
            type(err).__name__,
            err,
        )
        return EXIT_STORAGE
    if summary["videos_unrecorded"]:
        logger.error(
            "%d videos could not be labelled nor their failure recorded: storage at %s failed past the retry "
            "budget. Nothing was lost: rerun with the same output to finish them.",
            summary["videos_unrecorded"],
            config.output,
        )
        return EXIT_STORAGE
    if summary["videos_failed"]:
        logger.warning("%d videos failed; see %s", summary["videos_failed"], config.output.rstrip("/") + "/failures/")
        return EXIT_SOME_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
