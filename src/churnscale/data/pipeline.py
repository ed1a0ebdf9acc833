"""Hand items to a worker thread through a bounded queue, so producing and consuming overlap.

Arrow, numpy and Parquet release the GIL for their heavy work, so on two cores the reader and
conformer on one thread and the Parquet writer and fingerprint on another run side by side.
The queue's depth bounds how many items wait, which keeps memory at a few batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class ThreadedSink(Generic[T]):
    """Calls ``consume(item)`` on a worker thread for every item ``put``, in order.

    An error in ``consume`` is raised again in the producer by the next ``put`` or by
    ``close``; leaving the ``with`` block on an error stops the worker without waiting for
    the items still queued.
    """

    def __init__(self, consume: Callable[[T], None], *, depth: int = 2) -> None:
        self._consume = consume
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(depth, 1))
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name="churnscale-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None or self._cancelled.is_set():
                continue  # drain without work, so a blocked producer can finish
            try:
                self._consume(item)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue ``item`` for the worker; blocks while the queue is full."""
        self._raise_error()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every queued item is consumed; raise the worker's error if any."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> ThreadedSink[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        self._cancelled.set()
        while True:  # drop what waits, so the stop signal below never blocks
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()

    @property
    def cancelled(self) -> bool:
        """Whether the producer left on an error (queued items are then dropped)."""
        return self._cancelled.is_set()


def prefetched(items: Iterable[T], *, depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` on a worker thread, at most ``depth`` items ahead of the consumer.

    An error raised while producing is raised again here, at the item where it happened;
    leaving the loop early stops the worker once its pending item is taken.
    """
    box: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                box.put((0, item))
            box.put((1, None))
        except BaseException as exc:  # handed to the consumer below
            box.put((2, exc))

    thread = threading.Thread(target=produce, name="churnscale-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == 1:
                return
            if kind == 2:
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                continue
        thread.join()
