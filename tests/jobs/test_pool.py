"""The driver's actor pool on a local Ray instance, with actors that only echo: every video once, a bounded
number in flight per actor, as many actors as there is work for, a constructor's error raised."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from savos_job.corpus import VideoTask
from savos_job.pool import ActorPool, PoolActor

pytestmark = pytest.mark.ray


RAY_CPUS = 4  # the pool starts several one-CPU actors at once


class Echo(PoolActor):
    """Records its start in ``args["log"]``; answers each video after a short wait, with the most calls it has
    seen running at once. With ``args["expect"]``, no call is answered before that many actors have started: on a
    slow machine the first actors could otherwise label every video while the last one is still starting."""

    def __init__(self, args: dict[str, Any]) -> None:
        with open(args["log"], "a") as log:
            log.write(f"{os.getpid()}\n")
        self.log, self.expect = args["log"], args.get("expect", 0)
        self.running = self.most = 0

    async def label_video(self, task: str) -> dict[str, Any]:
        self.running += 1
        self.most = max(self.most, self.running)
        deadline = time.monotonic() + 60
        while len(Path(self.log).read_text().split()) < self.expect and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        self.running -= 1
        return {"video_id": VideoTask.from_json(task).video_id, "pid": os.getpid(), "most": self.most}

    async def label_videos(self, tasks: list[str]) -> list[dict[str, Any]]:
        rows = await super().label_videos(tasks)
        return [{**row, "call": len(tasks)} for row in rows]


class Refuses(PoolActor):
    def __init__(self, args: dict[str, Any]) -> None:
        raise FileNotFoundError("s3://models/missing.pt: no such checkpoint")

    async def label_video(self, task: str) -> dict[str, Any]:
        raise AssertionError("never called")


def tasks(count: int) -> list[VideoTask]:
    return [VideoTask(f"v{i:03d}", f"/corpus/v{i:03d}", f"/masks/v{i:03d}") for i in range(count)]


def test_every_video_once_over_every_actor_with_at_most_in_flight_each(ray_local, tmp_path: Path) -> None:
    log = tmp_path / "started"
    pool = ActorPool(Echo, {"log": str(log), "expect": 3}, size=3, in_flight=2, options={"num_cpus": 1})
    rows = list(pool.results(iter(tasks(40))))
    assert sorted(row["video_id"] for row in rows) == [t.video_id for t in tasks(40)]
    started = [int(pid) for pid in log.read_text().split()]
    assert len(started) == 3  # the actors start once for the whole run...
    assert {row["pid"] for row in rows} == set(started)  # ...and every one of them labels
    assert max(row["most"] for row in rows) == 2  # the next video waits in the actor, never more


def test_several_videos_per_call_every_video_once_and_in_flight_bounded(ray_local, tmp_path: Path) -> None:
    log = tmp_path / "started"
    pool = ActorPool(Echo, {"log": str(log), "expect": 2}, size=2, in_flight=6, options={"num_cpus": 1}, per_call=3)
    rows = list(pool.results(iter(tasks(40))))
    assert sorted(row["video_id"] for row in rows) == [t.video_id for t in tasks(40)]
    assert [row["call"] for row in rows].count(3) == 39  # 13 calls of three videos, then the last one alone
    assert max(row["most"] for row in rows) == 6  # two calls of three in each actor, never more
    assert len({row["pid"] for row in rows}) == 2


def test_no_more_actors_than_videos_and_none_for_no_video(ray_local, tmp_path: Path) -> None:
    log = tmp_path / "started"
    pool = ActorPool(Echo, {"log": str(log)}, size=4, in_flight=2, options={"num_cpus": 1})
    assert list(pool.results(iter([]))) == []
    assert pool.actors_started == 0
    assert not log.exists()
    assert sorted(row["video_id"] for row in pool.results(iter(tasks(2)))) == ["v000", "v001"]
    assert pool.actors_started == 2  # (the first one up may take both videos before the other has started)


def test_an_actor_that_cannot_start_stops_the_run_with_its_error(ray_local) -> None:
    pool = ActorPool(Refuses, {}, size=2, in_flight=2, options={"num_cpus": 1})
    with pytest.raises(Exception, match="no such checkpoint"):
        list(pool.results(iter(tasks(5))))


def test_a_pool_needs_an_actor_and_a_video_each() -> None:
    with pytest.raises(ValueError, match="at least one actor"):
        ActorPool(Echo, {}, size=0, in_flight=2, options={})
    with pytest.raises(ValueError, match="one per call"):
        ActorPool(Echo, {}, size=1, in_flight=2, options={}, per_call=0)


def test_ray_data_reads_a_compacted_output_once_per_row(ray_local: Any, tmp_path: Path) -> None:
    from savos.io import compact, dataset_files
    from tests.io.test_compact import IDS, whole_table, write_output

    out = tmp_path / "out"
    write_output(out, IDS)
    compact(str(out), target_rows=5)
    write_output(out, ["late"])  # labelled after the compaction: a per-video file beside the compacted ones
    rows = ray_local.data.read_parquet(dataset_files(str(out))).select_columns(["video_id", "frame_idx", "obj_id"])
    got = sorted((r["video_id"], r["frame_idx"], r["obj_id"]) for r in rows.iter_rows())
    assert got == whole_table(out)
    assert {video_id for video_id, _, _ in got} == {*IDS, "late"}
