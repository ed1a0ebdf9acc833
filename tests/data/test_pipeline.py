from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from churnscale.data.pipeline import ThreadedSink, prefetched


def test_items_are_consumed_in_order_on_another_thread() -> None:
    seen: list[int] = []
    threads: set[str] = set()

    def consume(item: int) -> None:
        seen.append(item)
        threads.add(threading.current_thread().name)

    with ThreadedSink(consume, depth=2) as sink:
        for i in range(100):
            sink.put(i)
    assert seen == list(range(100))
    assert threads == {"churnscale-sink"}


def test_worker_error_reaches_the_producer() -> None:
    def consume(item: int) -> None:
        if item == 3:
            raise ValueError(f"bad item {item}")

    with pytest.raises(ValueError, match="bad item 3"), ThreadedSink(consume, depth=1) as sink:
        for i in range(50):
            sink.put(i)


def test_producer_error_drops_queued_items_and_stops_the_worker() -> None:
    started = threading.Event()
    seen: list[int] = []
    sink: ThreadedSink[int]

    def consume(item: int) -> None:
        started.set()
        while not sink.cancelled:  # item 0 is in flight until the producer has failed
            threading.Event().wait(0.01)
        seen.append(item)

    sink = ThreadedSink(consume, depth=2)
    with pytest.raises(RuntimeError, match="reader failed"), sink:
        sink.put(0)
        started.wait(10)
        sink.put(1)
        sink.put(2)
        raise RuntimeError("reader failed")
    assert seen == [0]


def test_prefetched_yields_every_item_in_order_from_another_thread() -> None:
    threads: list[str] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(produce(), depth=2)) == list(range(50))
    assert set(threads) == {"churnscale-prefetch"}


def test_prefetched_raises_the_producer_error_where_it_happened() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("bad chunk")

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetched(produce()):
            seen.append(item)
    assert seen == [1]


def test_prefetched_stops_its_producer_when_the_consumer_leaves_early() -> None:
    made: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(1_000):
            made.append(i)
            yield i

    for item in prefetched(produce(), depth=2):
        if item == 3:
            break
    assert len(made) <= 3 + 1 + 2 + 1  # taken, in flight, queued, being made
    assert all(t.name != "churnscale-prefetch" for t in threading.enumerate())
