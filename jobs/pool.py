"""The driver's side of the job: one pool of labelling actors for the whole run, fed a video per call.

The listing streams in (read ahead in a thread, bounded) and each actor is kept a few videos ahead of its
lock-step: a call returns when its video's output is written, and the driver answers it with the next video.
The actors start once, whatever the corpus's size, and there is no tail between batches of videos: the only
tail is the run's last videos. The driver holds the listing's read-ahead and the calls in flight, never the
corpus.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Generator, Iterable
from typing import Any

from savos.inference.prefetch import prefetch

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


class ActorPool:
    """``size`` actors of ``actor_class`` (a :class:`PoolActor`), built with ``actor_args``; each is given up to
    ``in_flight`` videos.

    An actor process that dies is restarted by Ray and the calls it held are retried on it (its videos are redone
    from the start: nothing of them was written). An error in an actor's constructor, or one that is no video's
    own, ends the run: it is raised here.
    """

    def __init__(
        self, actor_class: type, actor_args: dict[str, Any], size: int, in_flight: int, options: dict[str, Any]
    ) -> None:
        if size < 1 or in_flight < 1:
            raise ValueError(f"an actor pool needs at least one actor and one video each, got {size} and {in_flight}")
        self.actor_class, self.actor_args, self.size, self.in_flight = actor_class, actor_args, size, in_flight
        self.options = {"max_restarts": -1, "max_task_retries": -1, **options}
        self.actors_started = 0  # by the last results()

    def results(self, tasks: Iterable[VideoTask]) -> Generator[dict[str, Any], None, None]:
        """Each task's result row, in the order the videos finish. Fewer actors start when there are fewer
        videos than actors; none when there is no video."""
        import ray

        waiting = prefetch(tasks, depth=self.size * self.in_flight)
        first = list(itertools.islice(waiting, self.size))
        self.actors_started = len(first)
        if not first:
            return
        remote: Any = ray.remote(self.actor_class).options(**self.options)
        actors = [remote.remote(self.actor_args) for _ in first]
        pending = itertools.chain(first, waiting)
        starting = {actor.ready.remote(): index for index, actor in enumerate(actors)}
        running: list[int] = []
        load = [0] * len(actors)
        calls: dict[Any, int] = {}  # a call's result -> its actor
        since, warned = time.monotonic(), False
        try:
            more = True
            while True:
                while more and running:
                    index = min(running, key=load.__getitem__)
                    if load[index] >= self.in_flight:
                        break
                    task = next(pending, None)
                    if task is None:
                        more = False
                        break
                    calls[actors[index].label_video.remote(task.to_json())] = index
                    load[index] += 1
                if not calls and not more:
                    return
                ready, _ = ray.wait([*calls, *starting], num_returns=1, timeout=WAITING_WARNING_SECONDS)
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
                for ref in ready:
                    if ref in starting:
                        index = starting.pop(ref)
                        ray.get(ref)  # raises the constructor's error, if any
                        running.append(index)
                    else:
                        load[calls.pop(ref)] -= 1
                        yield ray.get(ref)
        finally:
            waiting.close()
            for actor in actors:
                ray.kill(actor, no_restart=True)
