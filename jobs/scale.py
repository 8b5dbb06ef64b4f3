"""``python -m savos_job.scale``: the job's driver at scale, on a synthetic corpus (:mod:`savos_job.simulate`).

- **sweep**: the same corpus labelled by 2, 8, 32, ... simulated actors on a local Ray; for each, videos/s from
  the first video to the last, the driver's CPU per video (what sets its ceiling where it has a core of its own),
  the CPU of every other process of the run per video (actors, Ray's own), the driver's peak memory and the time to
  the first video. ``--plot`` draws videos/s and driver CPU per video against actors.
- **run**: one large run on a ``ray.cluster_utils.Cluster`` of fake nodes, optionally with a node killed when a
  share of the corpus is done (``--kill-at 0.5``); then every video's outcome is checked (masks or a failure
  record, never both, never neither) and the driver's memory sampled along the run is reported against videos done.
- **listing**: the driver's memory while it lists a synthetic manifest of ``--videos`` rows and checks each one's
  outputs, as a run's driver does (the part of the driver that grows with the corpus).

Every figure goes to ``--json`` with the machine it was measured on.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import logging
import pstats
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from savos.bench.engine import machine

from .config import JobConfig
from .output import OutputLocation
from .pending import pending_tasks
from .prelabel import run
from .simulate import SCHEME, SimulatedActor, write_manifest

logger = logging.getLogger("savos_job.scale")

SAMPLE_SECONDS = 0.25


class DriverSampler:
    """The driver's resident memory, sampled on a thread, with the videos done at each sample."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.done = 0
        self.samples: list[tuple[float, int, int]] = []  # (seconds, videos done, RSS bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driver-sampler", daemon=True)
        self._start = time.perf_counter()

    def __enter__(self) -> DriverSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append((time.perf_counter() - self._start, self.done, self.process.memory_info().rss))

    @property
    def peak_rss(self) -> int:
        return max((rss for _, _, rss in self.samples), default=self.process.memory_info().rss)


class CpuAccount:
    """CPU seconds spent by the driver, by the actors and by the whole machine between two snapshots (an actor
    that ended in between is missed: a killed node's)."""

    def __init__(self, actor_name: str) -> None:
        self.actor_name = actor_name
        self.driver = psutil.Process()

    def snapshot(self) -> dict[str, float]:
        seconds = {"driver": _cpu(self.driver), "actors": 0.0}
        for process in self.driver.children(recursive=True):
            try:
                if self.actor_name in " ".join(process.cmdline()):
                    seconds["actors"] += _cpu(process)
            except psutil.Error:
                continue
        system = psutil.cpu_times()
        seconds["machine_busy"] = system.user + system.system + getattr(system, "nice", 0.0)
        return seconds

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {key: after[key] - before.get(key, 0.0) for key in after}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class FinishTimes:
    """Videos finished per tenth of a second of the run, in constant memory: how long the run's last 1% took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.per_tick: dict[int, int] = {}

    def add(self, _row: dict[str, Any]) -> None:
        tick = int((time.perf_counter() - self.start) * 10)
        self.per_tick[tick] = self.per_tick.get(tick, 0) + 1

    def tail_seconds(self, share: float = 0.99) -> float:
        """From the moment ``share`` of the videos were done to the last one."""
        target, seen = sum(self.per_tick.values()) * share, 0
        ticks = sorted(self.per_tick)
        for tick in ticks:
            seen += self.per_tick[tick]
            if seen >= target:
                return (ticks[-1] - tick) / 10
        return 0.0


def simulated_config(manifest: Path, output: str | Path, actors: int, **options: Any) -> JobConfig:
    return JobConfig(
        input=str(manifest),
        output=str(output),
        allow_schemes=(SCHEME,),
        num_actors=actors,
        cpus_per_actor=1.0,
        progress_every=60.0,
        **options,
    )


def measured_run(config: JobConfig, on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One run of the simulated job, its summary and the driver's and the machine's costs."""
    cpu = CpuAccount(SimulatedActor.__name__)
    finish = FinishTimes()
    with DriverSampler() as sampler:

        def seen(row: dict[str, Any]) -> None:
            sampler.done += 1
            finish.add(row)
            if on_result is not None:
                on_result(row)

        before = cpu.snapshot()
        start = time.perf_counter()
        summary = run(config, SimulatedActor, on_result=seen)
        seconds = time.perf_counter() - start
        spent = cpu.delta(before, cpu.snapshot())
    videos = summary["videos_done"] + summary["videos_failed"] + summary["videos_unrecorded"]
    labelling = summary["labelling_seconds"] or seconds
    return {
        "actors": config.num_actors,
        "videos": videos,
        "videos_done": summary["videos_done"],
        "videos_failed": summary["videos_failed"],
        "videos_unrecorded": summary["videos_unrecorded"],
        "seconds": seconds,
        "seconds_to_first_video": summary["seconds_to_first_video"],
        "labelling_seconds": labelling,
        "videos_per_s": videos / labelling,
        "tail_seconds": finish.tail_seconds(0.99),
        "driver_cpu_ms_per_video": 1000 * spent["driver"] / videos,
        "actors_cpu_ms_per_video": 1000 * spent["actors"] / videos,
        # Everything else the machine did: Ray's own processes (GCS, raylets, idle workers), the file system.
        "other_cpu_ms_per_video": 1000 * (spent["machine_busy"] - spent["driver"] - spent["actors"]) / videos,
        "machine_busy_share": spent["machine_busy"] / (seconds * (psutil.cpu_count() or 1)),
        "driver_peak_rss_bytes": sampler.peak_rss,
        "driver_rss_samples": _thin(sampler.samples, 200),
        "run_id": summary["run_id"],
    }


def _thin(samples: list[tuple[float, int, int]], at_most: int) -> list[tuple[float, int, int]]:
    step = max(1, len(samples) // at_most)
    return samples[::step]


@contextmanager
def _profiled(path: Path | None, title: str) -> Iterator[str | None]:
    """cProfile of the driver's main thread (the pool's loop; the listing runs on a thread of its own) in that
    thread's CPU time, so that waiting is not counted; its top functions by own time appended to ``path``."""
    if path is None:
        yield None
        return
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        yield str(path)
    finally:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
        with path.open("a") as f:
            f.write(f"## {title}\n{text.getvalue()}\n")


@contextmanager
def local_ray(cpus: int) -> Iterator[None]:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def sweep(
    work: Path,
    actor_counts: list[int],
    locksteps: list[int],
    videos: int,
    frames: int,
    ms_per_frame: float,
    videos_per_call: int,
    profile: Path | None = None,
) -> list[dict[str, Any]]:
    """A run per (actors, lock-step width): the lock-step sets the videos in flight per actor (two widths)."""
    manifest = write_manifest(work / "sweep.jsonl", videos, frames, ms_per_frame, fail_every=100)
    points = []
    for actors, lockstep in itertools.product(actor_counts, locksteps):
        out = work / f"sweep-{actors}-{lockstep}"
        options = {"lockstep": lockstep, **({"videos_per_call": videos_per_call} if videos_per_call else {})}
        with local_ray(actors), _profiled(profile, f"actors {actors}, lock-step {lockstep}") as profiler:
            point = measured_run(simulated_config(manifest, out, actors, **options))
        if profiler is not None:
            point["profile"] = profiler
        point.update(lockstep=lockstep, videos_in_flight=2 * lockstep * actors, videos_per_call=videos_per_call)
        point.pop("driver_rss_samples")
        print(f"sweep: {json.dumps(point)}", flush=True)
        points.append(point)
    return points


def outcomes(output: str, videos: int) -> dict[str, Any]:
    """Every simulated video's outcome under ``output``: how many have masks, a failure record, both or neither,
    and the temporary files left (the job's promise: exactly one outcome each, nothing temporary)."""
    location = OutputLocation.open(output, JobConfig(input="", output="").retry_policy())
    storage, root = location.storage, location.root
    masks = {path for path, _ in storage.iter_files(storage.join(root, "masks"))}
    failures = {path for path, _ in storage.iter_files(storage.join(root, "failures"))}
    both, neither = 0, 0
    for index in range(videos):
        video_id = f"video-{index:07d}"
        has_masks = location.masks(video_id) in masks
        has_failure = location.failure(video_id) in failures
        both += has_masks and has_failure
        neither += not (has_masks or has_failure)
    temporaries = sum(1 for path, _ in storage.iter_files(root) if path.endswith(".tmp"))
    return {
        "masks": len(masks),
        "failure_records": len(failures),
        "both": both,
        "neither": neither,
        "temporary_files": temporaries,
    }


def cluster_run(
    work: Path,
    output: str,
    videos: int,
    frames: int,
    ms_per_frame: float,
    nodes: int,
    actors: int,
    lockstep: int,
    kill_at: float | None,
) -> dict[str, Any]:
    """``videos`` simulated videos on ``nodes`` fake nodes (each with room for the actors of a lost one); with
    ``kill_at``, the node holding the most actors is killed, without warning, once that share of videos is done."""
    import ray
    from ray.cluster_utils import Cluster

    manifest = write_manifest(work / "run.jsonl", videos, frames, ms_per_frame, fail_every=100)
    per_node = -(-actors // max(1, nodes - 1))  # the actors fit on the nodes left after one is lost
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
        },
    )
    workers = [cluster.add_node(num_cpus=per_node) for _ in range(nodes)]
    ray.init(address=cluster.address, log_to_driver=False)
    killed: dict[str, Any] = {}
    killer: threading.Thread | None = None

    def kill_busiest() -> None:
        by_node = _actors_by_node()
        node = max(workers, key=lambda w: by_node.get(w.node_id, 0))
        killed.update(at_videos=done[0], at_seconds=time.perf_counter() - start, actors=by_node.get(node.node_id, 0))
        cluster.remove_node(node, allow_graceful=False)

    done = [0]

    def on_result(_row: dict[str, Any]) -> None:
        nonlocal killer
        done[0] += 1
        if kill_at is not None and killer is None and done[0] >= kill_at * videos:
            killer = threading.Thread(target=kill_busiest, name="node-killer")
            killer.start()

    try:
        start = time.perf_counter()
        result = measured_run(
            simulated_config(manifest, output, actors, address=cluster.address, lockstep=lockstep), on_result
        )
        if killer is not None:
            killer.join()
    finally:
        ray.shutdown()
        cluster.shutdown()
    result.update(nodes=nodes, actors_per_node_cpus=per_node, killed_node=killed or None)
    result["outcomes"] = outcomes(output, videos)
    return result


def _actors_by_node() -> dict[str, int]:
    """Alive actors per node id (Ray's actor table; the public state API needs the dashboard)."""
    import ray

    counts: dict[str, int] = {}
    for actor in ray._private.state.state.actor_table(None).values():
        if actor["State"] == "ALIVE":
            node = actor["Address"]["NodeID"]
            counts[node] = counts.get(node, 0) + 1
    return counts


def listing(work: Path, output: str, videos: int, done_every: int) -> dict[str, Any]:
    """The driver's resident memory while :func:`~savos_job.pending.pending_tasks` streams a ``videos``-row manifest
    and decides for each video whether it is pending, sampled against rows listed; with ``done_every``, every such
    video has masks already (a resumed run)."""
    manifest = write_manifest(work / "listing.jsonl", videos, 300, 0.0)
    config = simulated_config(manifest, output, 1)
    location = OutputLocation.open(config.output, config.retry_policy())
    if done_every:
        for index in range(0, videos, done_every):
            location.put(location.masks(f"video-{index:07d}"), b"PAR1" + bytes(4) + b"PAR1")  # the size checked
    with DriverSampler() as sampler:
        start = time.perf_counter()
        pending = sum(1 for _ in pending_tasks(config, location))
        seconds = time.perf_counter() - start
        sampler.done = videos
    samples = sampler.samples
    return {
        "videos": videos,
        "pending": pending,
        "seconds": seconds,
        "videos_per_s": videos / seconds,
        "driver_rss_start_bytes": samples[0][2] if samples else None,
        "driver_peak_rss_bytes": sampler.peak_rss,
        "rss_samples": _thin(samples, 200),
    }


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Two panels: videos/s against actors, and the driver's CPU per video against the videos in flight; a line
    per label, drawn in a panel where its points vary along that axis."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    figure, (rate, cpu) = plt.subplots(1, 2, figsize=(11, 4.2))
    ticks: dict[Any, set[int]] = {rate: set(), cpu: set()}
    for label in dict.fromkeys(p.get("label", "") for p in points):
        mine = [p for p in points if p.get("label", "") == label]
        if len({p["actors"] for p in mine}) > 1:
            mine.sort(key=lambda p: p["actors"])
            rate.plot([p["actors"] for p in mine], [p["videos_per_s"] for p in mine], marker="o", label=label)
            ticks[rate].update(p["actors"] for p in mine)
        if len({p["videos_in_flight"] for p in mine}) > 1 and len({p["actors"] for p in mine}) == 1:
            mine.sort(key=lambda p: p["videos_in_flight"])
            x = [p["videos_in_flight"] for p in mine]
            cpu.plot(x, [p["driver_cpu_ms_per_video"] for p in mine], marker="o", label=label)
            ticks[cpu].update(x)
    rate.set(xscale="log", xlabel="actors (each a process on this machine)", ylabel="videos/s")
    rate.set_title("Throughput against actors", fontsize=10)
    cpu.set(xscale="log", xlabel="videos in flight (8 actors)", ylabel="driver CPU ms per video")
    cpu.set_title("The driver's cost against calls in flight", fontsize=10)
    for axes in (rate, cpu):
        if ticks[axes]:
            axes.set_xticks(sorted(ticks[axes]), [f"{t:,}" for t in sorted(ticks[axes])])
            axes.minorticks_off()
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    figure.suptitle("Simulated job (no model), local Ray on one machine")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m savos_job.scale", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sweep_parser = commands.add_parser("sweep", help="videos/s and driver CPU against actors, on a local Ray")
    sweep_parser.add_argument("--actors", type=int, nargs="+", default=[2, 8, 32, 64])
    sweep_parser.add_argument("--videos", type=int, default=6000)
    sweep_parser.add_argument("--label", default="", help="a name for these points in the JSON and the plot")
    sweep_parser.add_argument("--profile", type=Path, help="the driver's cProfile of each run, top functions, here")
    sweep_parser.add_argument("--plot", type=Path, help="a PNG of the points (with those of --json, if it exists)")
    sweep_parser.add_argument(
        "--lockstep",
        type=int,
        nargs="+",
        default=[8],
        help="videos in flight per actor: 2 x this (default: 8, as on GPUs)",
    )
    sweep_parser.add_argument(
        "--videos-per-call", type=int, default=0, help="the job's --videos-per-call (default: 0, the lock-step width)"
    )
    run_parser = commands.add_parser("run", help="one large run on fake nodes, optionally one killed mid-way")
    run_parser.add_argument("--videos", type=int, default=100_000)
    run_parser.add_argument("--nodes", type=int, default=4)
    run_parser.add_argument("--actors", type=int, default=16)
    run_parser.add_argument("--lockstep", type=int, default=8, help="videos in flight per actor: 2 x this (default: 8)")
    run_parser.add_argument("--kill-at", type=float, help="kill a node when this share of the videos is done")
    plot_parser = commands.add_parser("plot", help="draw the points of sweep JSON files in one PNG")
    plot_parser.add_argument("sweeps", type=Path, nargs="+", help="JSON files written by sweep --json")
    plot_parser.add_argument("--png", type=Path, required=True)
    listing_parser = commands.add_parser("listing", help="driver memory while listing a synthetic manifest")
    listing_parser.add_argument("--videos", type=int, default=1_000_000)
    listing_parser.add_argument("--done-every", type=int, default=0, help="every N-th video has masks already")
    for sub in (run_parser, listing_parser):
        sub.add_argument("--output", help="the output URI (default: a folder of --work); s3://... for object storage")
    for sub in (sweep_parser, run_parser):
        sub.add_argument("--frames", type=int, default=1, help="frames per video (default: 1)")
        sub.add_argument("--ms-per-frame", type=float, default=0.0, help="the model's time per frame (default: 0)")
    for sub in (sweep_parser, run_parser, listing_parser):
        sub.add_argument("--json", type=Path, help="write (sweep: add) the results here")
        sub.add_argument("--work", type=Path, help="a folder for the manifest and outputs (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.command == "plot":
        plot([p for sweep in args.sweeps for p in json.loads(sweep.read_text())["points"]], args.png)
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="savos-scale-", dir=args.work) as tmp:
        work = Path(tmp)
        results: dict[str, Any] = {"machine": machine(), "command": args.command}
        if args.command == "sweep":
            points = sweep(
                work,
                args.actors,
                args.lockstep,
                args.videos,
                args.frames,
                args.ms_per_frame,
                args.videos_per_call,
                args.profile,
            )
            for point in points:
                point["label"] = args.label
            if args.json and args.json.exists():
                points = [*json.loads(args.json.read_text()).get("points", []), *points]
            results["points"] = points
            if args.plot:
                plot(points, args.plot)
        elif args.command == "run":
            results["run"] = cluster_run(
                work,
                args.output or str(work / "out"),
                args.videos,
                args.frames,
                args.ms_per_frame,
                args.nodes,
                args.actors,
                args.lockstep,
                args.kill_at,
            )
            print(json.dumps({k: v for k, v in results["run"].items() if k != "driver_rss_samples"}), flush=True)
        else:
            results["listing"] = listing(work, args.output or str(work / "out"), args.videos, args.done_every)
            print(json.dumps({k: v for k, v in results["listing"].items() if k != "rss_samples"}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
