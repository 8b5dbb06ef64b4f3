from __future__ import annotations

import threading
import time

import pytest

from savos.prefetch import prefetch


def test_items_come_in_order() -> None:
    assert list(prefetch(range(20), depth=3)) == list(range(20))


def test_producer_reads_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetch(source(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    # One handed out, `depth` queued, one held by the producer waiting for a slot.
    assert len(produced) <= 4
    stream.close()


def test_producer_error_is_raised_at_its_position() -> None:
    def source():
        yield 1
        raise OSError("disk gone")

    stream = prefetch(source(), depth=2)
    assert next(stream) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(stream)


def test_closing_early_stops_the_producer_thread() -> None:
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    stream = prefetch(endless(), depth=2)
    next(stream)
    stream.close()
    assert threading.active_count() == before
