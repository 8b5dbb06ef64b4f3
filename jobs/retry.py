"""How storage calls are retried: one :class:`RetryPolicy`, passed down to every storage call of a run.

Two layers retry an S3 request, both set here: botocore's own (``standard`` mode, :attr:`RetryPolicy.sdk_attempts`
tries of each request, for a dropped connection or a throttled answer) and ours around it (:attr:`attempts` tries
of each storage operation, with a longer backoff, to ride out an outage). s3fs's third layer is turned off: what
it retries, botocore's standard mode retries too. :meth:`RetryPolicy.budget_seconds` is what the layers wait in
all before an operation gives up; ``tests/jobs/test_retry_budget.py`` measures it against a stopped S3 server.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from .redact import log_text

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors worth another try: network hiccups, server errors, throttling, timeouts. A missing file, a refused
# credential or bad data is not transient.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, BrokenPipeError)
try:  # s3fs talks through botocore, whose connection errors are not the builtin ones
    from botocore.exceptions import ConnectionError as _BotoConnectionError
    from botocore.exceptions import HTTPClientError as _BotoHTTPClientError

    _TRANSIENT_TYPES += (_BotoConnectionError, _BotoHTTPClientError)
except ImportError:  # pragma: no cover - botocore comes with s3fs
    pass
_TRANSIENT_ERRNOS = {errno.EREMOTEIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.EBUSY}


def is_transient(err: BaseException) -> bool:
    """Whether another try may succeed (s3fs reports 5xx answers as ``OSError(EREMOTEIO)``)."""
    if isinstance(err, _TRANSIENT_TYPES):
        return True
    return type(err) is OSError and err.errno in _TRANSIENT_ERRNOS


@dataclass(frozen=True)
class RetryPolicy:
    """Tries of one storage operation: ``attempts`` in all, the wait before try ``k + 1`` being
    ``base_delay * 2**(k-1)`` stretched by up to ``jitter`` (so that many workers hit by one outage do not retry
    in step); each try is one S3 request that botocore itself makes up to ``sdk_attempts`` times."""

    attempts: int = 6
    base_delay: float = 0.5
    jitter: float = 0.2
    sdk_attempts: int = 2

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.sdk_attempts < 1 or self.base_delay < 0 or self.jitter < 0:
            raise ValueError(f"a retry policy needs at least one try and no negative wait: {self}")

    def call(self, action: Callable[[], T], what: str) -> T:
        """Run ``action``; on a transient error wait and try again, up to :attr:`attempts` tries in all."""
        for attempt in range(1, self.attempts + 1):
            try:
                return action()
            except Exception as err:
                self._wait_or_raise(err, attempt, what)
        raise AssertionError("unreachable")

    def resumable(self, open_items: Callable[[], Iterator[T]], what: str) -> Iterator[T]:
        """The items of a stream read from storage (a manifest, line by line or batch by batch); when a transient
        error breaks it off, it is opened again after a backoff and the items already yielded are skipped. The
        budget counts failures in a row: each item read starts it afresh."""
        yielded, failures = 0, 0
        while True:
            try:
                for index, item in enumerate(open_items()):
                    if index >= yielded:
                        yield item
                        yielded, failures = yielded + 1, 0
                return
            except Exception as err:
                failures += 1
                self._wait_or_raise(err, failures, what)

    def delay(self, attempt: int) -> float:
        """The wait after failed try number ``attempt``."""
        return self.base_delay * 2 ** (attempt - 1) * (1 + self.jitter * random.random())

    def s3_options(self) -> dict[str, Any]:
        """Storage options of an ``s3://`` filesystem that set botocore's retries (its standard mode)."""
        return {"config_kwargs": {"retries": {"mode": "standard", "total_max_attempts": self.sdk_attempts}}}

    def budget_seconds(self, worst: bool = False) -> float:
        """What an operation that never succeeds waits in all before it gives up: the mean over the jitter, or
        with ``worst`` its most. botocore waits ``U[0, 1) * 2**(n-1)`` seconds before its retry ``n`` (its
        standard mode's backoff for an error that is not throttling)."""
        stretch = 1 + (self.jitter if worst else self.jitter / 2)
        ours = sum(self.base_delay * 2 ** (k - 1) for k in range(1, self.attempts)) * stretch
        per_request = sum(2 ** (n - 1) for n in range(1, self.sdk_attempts)) * (1.0 if worst else 0.5)
        return ours + self.attempts * per_request

    def _wait_or_raise(self, err: Exception, attempt: int, what: str) -> None:
        """After failed try number ``attempt``: re-raise ``err`` if it is permanent or the budget is spent, else
        wait."""
        if not is_transient(err) or attempt >= self.attempts:
            raise err
        delay = self.delay(attempt)
        logger.warning(
            "%s failed (%s: %s); retry %d/%d in %.1fs",
            log_text(what),
            type(err).__name__,
            log_text(str(err)),
            attempt,
            self.attempts - 1,
            delay,
        )
        time.sleep(delay)
