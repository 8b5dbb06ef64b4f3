"""The batch pre-labeling job: ``python -m savos_job.prelabel --input URI --output URI`` (or ``savos-prelabel``).

The driver lists the corpus (streamed), skips videos whose masks already exist (and, unless ``--retry-failed``,
those with a failure record), and feeds the rest, a lock-step width of videos per call, to one pool of
:class:`PrelabelActor` (a SAVOS predictor each) that lives for the whole run (:mod:`savos_job.pool`). Every video
writes its own output; the driver only counts. Exit status: 0 when every video of the corpus has masks; 3 when
some have none (failed now or before, or a manifest row could not be used: records in ``OUT/failures/`` and the
run summary); 4 when storage failed past the retry budget or the output stopped taking writes (those videos are
left for a rerun); 2 on bad options or input, an output that cannot be written included; 143 or 130 when stopped
by SIGTERM or SIGINT (the summary says so; a rerun finishes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from savos.calibration import JCalibration, calibration_of
from savos.data.errors import InputError
from savos.inference import EngineOptions
from savos.inference.cpu import HEAP_ENV, tune_process_for_cpu_inference
from savos.quality import preset_name

from .carry import CarryOver, carry_summary
from .config import JobConfig, parse_config
from .corpus import VideoTask
from .interrupt import Interrupted, signals_raise
from .labeler import TaskFeed, VideoLabeler
from .output import OutputLocation, OutputUnwritable
from .pending import ListingNotes, pending_tasks
from .pool import ActorPool, PoolActor
from .redact import redact
from .retry import is_transient
from .storage import Storage, resolve
from .writer import VideoResult

if TYPE_CHECKING:
    from savos.inference import Predictor

logger = logging.getLogger("savos_job.prelabel")

T = TypeVar("T")

EXIT_SOME_FAILED = 3
EXIT_STORAGE = 4  # storage stayed down: some videos have neither masks nor a failure record (rerun to finish)


class PrelabelActor(PoolActor):
    """A Ray actor: loads the model once, then labels the videos handed to it for the whole run.

    Each call hands in a few videos (a lock-step width by default) and returns their result rows once their
    outputs are written. The driver keeps two lock-step widths of videos in flight per actor, and the actor runs
    one lock-step for its whole life (:meth:`~savos_job.labeler.VideoLabeler.serve`): a video joins as soon as
    another ends, whichever call brought it, so the batch never drains between calls and the accelerator never
    waits for the driver.

    All of its torch work (loading the model, every frame) runs on one thread of its own. Ray constructs the
    actor on one thread and runs calls on another; torch's CPU kernels would then run OpenMP teams from both, and
    libgomp, seeing more of its threads than CPUs, makes them sleep between parallel regions instead of spinning:
    the job ran at 0.75x the engine's speed on a 2-core CPU for that alone (BENCHMARKS.md, "The batch job").
    """

    def __init__(self, config: dict[str, Any]) -> None:
        job, run_id = JobConfig.from_actor_args(config)
        self._compute = ComputeThread()
        self.labeler = self._compute.submit(self._make_labeler, job, run_id).result()
        self._counters = _metrics()
        self._feed = TaskFeed()
        self._waiting: set[asyncio.Future[VideoResult]] = set()
        self._lock = threading.Lock()
        self._stopped: BaseException | None = None
        self._compute.submit(self._serve)

    def _make_labeler(self, job: JobConfig, run_id: str | None) -> VideoLabeler:
        import torch

        if not torch.cuda.is_available():
            # As many compute threads as CPUs the actor was given, before the first kernel makes a team (Ray's
            # OMP_NUM_THREADS comes after torch has started).
            torch.set_num_threads(max(1, int(job.cpus_per_actor)))
            tune_process_for_cpu_inference()
        predictor, meta = self.make_predictor(job)
        lockstep = lockstep_videos(job, predictor.device.type == "cuda")
        output = OutputLocation.open(job.output, job.retry_policy())
        model_id = str(meta.get("checkpoint_id", "unknown"))
        calibration = job_calibration(job, meta)
        return VideoLabeler(
            predictor,
            model_id,
            output,
            job.preview_every,
            job.max_objects,
            lockstep,
            run_id,
            job.corrections,
            calibration,
            job.backward,
        )

    def make_predictor(self, job: JobConfig) -> tuple[Predictor, dict[str, Any]]:
        """The checkpoint's model on this actor's device; and the checkpoint's metadata (its id is written with
        every mask, its calibration turns scores into J estimates)."""
        from savos.checkpoint import load_checkpoint, load_default_model
        from savos.inference import Predictor

        if job.checkpoint is None:
            model, meta = load_default_model()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "model.pt"
                storage, path = Storage.open(job.checkpoint, job.retry_policy())
                local.write_bytes(storage.read(path))
                model, meta = load_checkpoint(local)
        predictor = Predictor(
            model,
            device="auto",
            precision=job.precision,
            quality=job.test_time(),
            options=EngineOptions(
                max_pixels=job.max_pixels, max_pass_pixels=job.max_pass_pixels or "auto", compile=job.compile
            ),
        )
        return predictor, meta

    async def label_video(self, task: str) -> dict[str, Any]:
        """Label one video (a :class:`VideoTask` as JSON); its result row, once its output is written."""
        done: asyncio.Future[VideoResult] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._stopped is not None:
                raise RuntimeError("this actor's labeler has stopped") from self._stopped
            self._waiting.add(done)
        self._feed.put(VideoTask.from_json(task), lambda result: _settle(done, result))
        try:
            result = await done
        finally:
            with self._lock:
                self._waiting.discard(done)
        if self._counters:
            frames, videos = self._counters
            if result.frames:  # Counter.inc refuses 0
                frames.inc(result.frames)
            videos.inc(1, tags={"status": result.status})
        return result.to_row()

    def _serve(self) -> None:
        """The actor's lock-step, on the compute thread. It ends only on an error that is no video's own (a
        broken device, say): every call waiting then fails with it, and so does every later call."""
        try:
            self.labeler.serve(self._feed)
        except BaseException as err:
            logger.exception("the labeler stopped")
            stopped = err
        else:
            stopped = RuntimeError("the labeler's feed was closed")
        with self._lock:
            self._stopped = stopped
            waiting, self._waiting = self._waiting, set()
        for done in waiting:
            _settle(done, stopped)

    def close(self) -> None:
        """Let the lock-step finish the videos handed in so far and stop (tests; Ray ends an actor by its process)."""
        self._feed.close()
        self._compute.shutdown()


class ComputeThread:
    """One daemon thread that runs the functions handed to it, in order.

    A daemon, unlike a :class:`~concurrent.futures.ThreadPoolExecutor`'s workers, which the interpreter joins at
    exit: an actor process told to exit while its lock-step waits for the next video would otherwise wait for
    ever, and outlive its job holding the model's memory.
    """

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._run, name="savos-compute", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._work.put((future, fn, args))
        return future

    def shutdown(self) -> None:
        """Return once the functions handed in so far have run."""
        self._work.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as err:
                    future.set_exception(err)


def _settle(done: asyncio.Future[VideoResult], outcome: VideoResult | BaseException) -> None:
    """Complete a call's future from another thread (the encoder's or the compute thread)."""

    def settle() -> None:
        if done.done():
            return
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    done.get_loop().call_soon_threadsafe(settle)


def job_calibration(config: JobConfig, meta: dict[str, Any]) -> JCalibration | None:
    """The checkpoint's score -> J calibration for the job's test-time preset; None when it has none for it (a
    preset with options changed has none): the rows' ``j_estimate`` is then null."""
    preset = preset_name(config.test_time())
    calibration = calibration_of(meta, preset) if preset is not None else None
    if calibration is None:
        logger.info("no J calibration for these test-time settings in the checkpoint: j_estimate stays empty")
    return calibration


def lockstep_videos(config: JobConfig, gpu: bool) -> int:
    """How many videos an actor advances together: on a GPU, batching across videos is what fills it."""
    if config.lockstep > 0:
        return config.lockstep
    return 8 if gpu else 1


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


def run(
    config: JobConfig,
    actor: type[PoolActor] = PrelabelActor,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Label every pending video; returns the run summary (also written to ``OUT/_runs/<run_id>.json``).

    Before any actor starts, the output is checked to take writes. The run stops early, its summary written and
    marked, when the output refuses a write for good (:class:`~savos_job.output.OutputUnwritable`, re-raised) or when
    the driver gets SIGTERM or SIGINT (:class:`~savos_job.interrupt.Interrupted`, re-raised); either way its actors end.

    ``actor`` is the labelling actor's class (the benchmarks pass one with a no-op model, or a simulated one);
    ``on_result`` is called with each video's result row as it arrives (progress displays, measurements)."""
    import ray

    check_output_outside_input(config)
    output = OutputLocation.open(config.output, config.retry_policy())
    try:
        output.check_writable()
    except OutputUnwritable as err:
        advice = ": access denied, check the storage credentials and their permissions" if err.denied else ""
        raise InputError(config.output, f"the output cannot be written ({err.problem}){advice}") from err
    output.remove_stale_temporaries()
    notes = ListingNotes()
    carry = CarryOver.open(config, output)  # an earlier version that cannot be carried is named before Ray starts
    tasks = pending_tasks(config, output, notes, carry)  # so is a corpus or manifest that is not there
    if not ray.is_initialized():
        ray.init(address=config.address, log_to_driver=True)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    check_actor_fits(config, gpus)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    logger.info(
        "run %s: %s -> %s on %s", run_id, redact(config.input), redact(config.output), "GPUs" if gpus else "CPUs"
    )
    start, started_at = time.perf_counter(), time.time()
    counts = {"done": 0, "failed": 0, "unrecorded": 0, "frames": 0}
    span = _Span()
    # CPU actors start with glibc told to keep freed memory (savos.inference.cpu): it must be set before the
    # process starts, as Ray's own threads have their allocator arenas before the actor's code runs. Ray merges
    # these with the job's.
    cpu_only: dict[str, Any] = {} if gpus else {"runtime_env": {"env_vars": HEAP_ENV}}
    options = {"num_gpus": config.gpus_per_actor if gpus else 0, "num_cpus": config.cpus_per_actor, **cpu_only}
    # Two lock-step widths per actor: one in the network, one waiting to join as those end.
    lockstep = lockstep_videos(config, gpus)
    per_call = config.videos_per_call or lockstep
    pool = ActorPool(actor, config.actor_args(run_id), config.num_actors, 2 * lockstep, options, per_call)
    stopped: str | None = None
    last_log = time.perf_counter()
    try:
        with signals_raise(), contextlib.closing(pool.results(tasks)) as rows:
            for row in rows:
                if row["status"] == "unwritable":
                    raise OutputUnwritable(config.output, row["error"])
                counts[row["status"]] += 1
                counts["frames"] += int(row["frames"])
                span.add(row["started"], row["finished"])
                if on_result is not None:
                    on_result(row)
                if time.perf_counter() - last_log >= config.progress_every:
                    _log_progress(counts, start)
                    last_log = time.perf_counter()
    except Interrupted as err:
        stopped = err.name
        raise
    except OutputUnwritable:
        stopped = "output unwritable"
        raise
    except BaseException as err:  # the summary says why the run ended early; the error goes on to the caller
        stopped = f"error: {type(err).__name__}"
        raise
    finally:
        summary = _summary(run_id, config, counts, time.perf_counter() - start)
        summary.update(span.summary(started_at, counts["frames"]))
        summary.update(notes.to_dict(), stopped=stopped, interrupted=stopped in ("SIGTERM", "SIGINT"))
        summary.update(carry_summary(carry))  # waits for the copies still running
        output.write_summary(run_id, summary)
        _log_progress(counts, start)
    return summary


def check_actor_fits(config: JobConfig, gpus: bool) -> None:
    """On a Ray instance of our own (no ``--address``: nothing will join it), refuse actors that no node can
    hold: they would wait for ever. A cluster joined by address may grow (an autoscaler): the pool warns there."""
    import ray

    if config.address is not None:
        return
    need = {"CPU": config.cpus_per_actor, "GPU": config.gpus_per_actor if gpus else 0.0}
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
        return
    for key, option in (("CPU", "--cpus-per-actor"), ("GPU", "--gpus-per-actor")):
        largest = max((node.get(key, 0.0) for node in nodes), default=0.0)
        if need[key] > largest:
            problem = f"no node of this Ray instance has that many {key}s (the most is {largest:g})"
            raise InputError(f"{option} {need[key]:g}", problem)


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
        "config": {**config.to_dict(), "scales": list(config.scales) if config.scales is not None else None},
        "test_time": config.test_time().to_dict(),
        "versions": {"savos": savos.__version__, "torch": torch.__version__, "ray": ray.__version__},
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_config(argv)
    try:
        summary = run(config)
    except Interrupted as err:
        logger.error("%s: the run stopped, its actors ended; rerun with the same output to finish it", err)
        return err.exit_status
    except InputError as err:
        print(f"savos-prelabel: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except OutputUnwritable as err:
        logger.error("%s. The run stopped; nothing written before was lost: make the output writable and rerun", err)
        return EXIT_STORAGE
    except PermissionError as err:
        print(f"savos-prelabel: error: {describe_refusal(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if not is_transient(err):
            raise
        logger.error(
            "storage failed past the retry budget (%s: %s); the run stopped. Nothing was lost: rerun with the same "
            "output to finish it.",
            type(err).__name__,
            err,
        )
        return EXIT_STORAGE
    return exit_status(config, summary)


def exit_status(config: JobConfig, summary: dict[str, Any]) -> int:
    """0 only when every video of the corpus has masks."""
    if summary["videos_unrecorded"] or summary["videos_carry_failed"]:
        logger.error(
            "%d videos could not be labelled nor their failure recorded, %d could not be carried: storage at %s "
            "failed past the retry budget. Nothing was lost: rerun with the same output to finish them.",
            summary["videos_unrecorded"],
            summary["videos_carry_failed"],
            redact(config.output),
        )
        return EXIT_STORAGE
    failed = summary["videos_failed"]
    before = summary["videos_failed_before"]["count"]
    refused = summary["manifest_rows_refused"]["count"]
    if failed or before or refused:
        logger.warning(
            "not every video is labelled: %d failed in this run, %d failed before (not retried without "
            "--retry-failed), %d manifest rows refused; see %s",
            failed,
            before,
            refused,
            redact(config.output.rstrip("/")) + "/failures/ and the run summary",
        )
        return EXIT_SOME_FAILED
    return 0


def describe_refusal(err: PermissionError) -> str:
    """A local file's refused permission names the file; an object store's refusal is about the credentials."""
    if err.filename is not None:
        return f"permission denied: {err.filename} ({err.strerror})"
    return f"access denied by the storage ({redact(str(err))}); check the storage credentials and their permissions"


if __name__ == "__main__":
    sys.exit(main())
