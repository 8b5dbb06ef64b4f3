"""The driver's side of the job: one pool of labelling actors for the whole run, fed a few videos per call.

The listing streams in (read ahead in a thread, bounded) and each actor is kept a few videos ahead of its
lock-step: a call hands in as many videos as the lock-step is wide and returns when their outputs are written,
and the driver answers it with the next ones (a call per lock-step width, not per video, is what lets one
driver feed hundreds of GPUs: BENCHMARKS.md, "The driver at scale"). The actors start once, whatever the
corpus's size, and there is no tail between batches of videos: the only tail is the run's last videos. The
driver holds the listing's read-ahead and the calls in flight, never the corpus.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from savos.prefetch import prefetch

from .corpus import VideoTask

logger = logging.getLogger(__name__)

WAITING_WARNING_SECONDS = 60.0  # an actor not started by then is reported (the cluster may lack its resources)


class PoolActor:
    """What :class:`ActorPool` needs of an actor class: :meth:`ready`, which answers once the actor is constructed
    (or raises its constructor's error), so the pool knows which actors run; and :meth:`label_video`."""

    def ready(self) -> bool:
        """True, once the actor is constructed."""
        return True

    async def label_video(self, task: str) -> dict[str, Any]:
        """Label one video (a :class:`~savos_job.corpus.VideoTask` as JSON); its result row, once its output is
        written."""
        raise NotImplementedError

    async def label_videos(self, tasks: list[str]) -> list[dict[str, Any]]:
        """Several videos in one call, labelled concurrently (each joins the actor's lock-step on its own); their
        result rows, once every one's output is written."""
        return list(await asyncio.gather(*(self.label_video(task) for task in tasks)))


class ActorPool:
    """``size`` actors of ``actor_class`` (a :class:`PoolActor`), built with ``actor_args``; each is given up to
    ``in_flight`` videos, ``per_call`` of them in a call.

    An actor process that dies is restarted by Ray and the calls it held are retried on it (their videos are redone
    from the start: their outputs are written whole or not at all, so a redone video replaces nothing but itself).
    An error in an actor's constructor, or one that is no video's own, ends the run: it is raised here.
    """

    def __init__(
        self,
        actor_class: type,
        actor_args: dict[str, Any],
        size: int,
        in_flight: int,
        options: dict[str, Any],
        per_call: int = 1,
    ) -> None:
        if size < 1 or in_flight < 1 or per_call < 1:
            raise ValueError(
                f"an actor pool needs at least one actor, one video in flight and one per call, "
                f"got {size}, {in_flight} and {per_call}"
            )
        self.actor_class, self.actor_args, self.size = actor_class, actor_args, size
        self.per_call = min(per_call, in_flight)
        self.calls_per_actor = max(1, in_flight // self.per_call)
        self.options = {"max_restarts": -1, "max_task_retries": -1, **options}
        self.actors_started = 0  # by the last results()

    def results(self, tasks: Iterable[VideoTask]) -> Generator[dict[str, Any], None, None]:
        """Each task's result row, in the order the calls finish. Fewer actors start when there are fewer
        videos than actors; none when there is no video."""
        import ray

        waiting = prefetch(tasks, depth=self.size * self.calls_per_actor * self.per_call)
        first = list(itertools.islice(waiting, self.size))
        self.actors_started = len(first)
        if not first:
            return
        remote: Any = ray.remote(self.actor_class).options(**self.options)
        actors = [remote.remote(self.actor_args) for _ in first]
        pending = itertools.chain(first, waiting)
        starting = {actor.ready.remote(): index for index, actor in enumerate(actors)}
        free: collections.deque[int] = collections.deque()  # an actor's index per call it can take, as they free
        calls: dict[Any, int] = {}  # a call's result -> its actor
        since, warned = time.monotonic(), False
        try:
            more = True
            while True:
                while more and free:
                    batch = [task.to_json() for task in itertools.islice(pending, self.per_call)]
                    if not batch:
                        more = False
                        break
                    index = free.popleft()
                    calls[actors[index].label_videos.remote(batch)] = index
                if not calls and not more:
                    return
                ready = _wait_all_ready([*calls, *starting], WAITING_WARNING_SECONDS)
                if not ready and starting and not warned and time.monotonic() - since >= WAITING_WARNING_SECONDS:
                    logger.warning(
                        "%d of %d actors have not started after %.0f s: the cluster may lack the resources they ask "
                        "for (%s)",
                        len(starting),
                        len(actors),
                        time.monotonic() - since,
                        {k: v for k, v in self.options.items() if k.startswith("num_")},
                    )
                    warned = True
                finished = []
                for ref in ready:
                    if ref in starting:
                        index = starting.pop(ref)
                        ray.get(ref)  # raises the constructor's error, if any
                        free.extend([index] * self.calls_per_actor)
                    else:
                        free.append(calls.pop(ref))
                        finished.append(ref)
                for rows in _get_each(finished):
                    yield from rows
        finally:
            waiting.close()
            for actor in actors:
                ray.kill(actor, no_restart=True)


def _wait_all_ready(refs: list[Any], timeout: float) -> list[Any]:
    """Those of ``refs`` that are ready: at least one, waited for up to ``timeout`` seconds, and every other one
    ready by then. One pass over the calls in flight answers many of them when they finish fast."""
    import ray

    ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
    if ready and rest:
        more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
        ready.extend(more)
    return ready


def _get_each(refs: list[Any]) -> Iterator[Any]:
    """Each result of ``refs``, fetched together; when one of them is an error, the ones before it are still
    yielded before it is raised."""
    import ray

    try:
        values = ray.get(refs)
    except Exception:
        values = None
    if values is not None:
        yield from values
        return
    for ref in refs:
        yield ray.get(ref)
