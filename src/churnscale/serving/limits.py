"""Admission control for the service: bounded concurrency and deadlines.

* :class:`AdmissionController` lets at most ``max_in_flight`` requests run and ``max_queue`` wait;
  beyond that it refuses at once with :class:`~churnscale.exceptions.OverloadedError` (503)
  carrying a ``Retry-After`` hint computed from recent latency.
* :class:`BufferBudget` bounds the bytes of request bodies the server holds before their
  requests are answered, over all connections.
* :func:`deadline` bounds a request's time; running past it raises
  :class:`~churnscale.exceptions.DeadlineExceededError` (504).

Body and header limits are the gateway's (:mod:`churnscale.serving.bodies`,
:data:`~churnscale.serving.gateway.MAX_HEADER_BYTES`): with httptools (the default parser of
``uvicorn[standard]``) uvicorn sets no limit on the size of request headers and never sends
431, so the gateway checks the head itself. Headers are already in memory by then: put a proxy
with its own header limit (an ingress, nginx ``large_client_header_buffers``) in front of the
service to bound that memory.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from churnscale.exceptions import ConfigError, DeadlineExceededError, OverloadedError


class AdmissionController:
    """At most ``max_in_flight`` requests running and ``max_queue`` waiting; the rest refused.

    >>> async def demo() -> int:
    ...     controller = AdmissionController(max_in_flight=2, max_queue=0)
    ...     async with controller.admit():
    ...         return controller.in_flight
    >>> asyncio.run(demo())
    1
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        max_queue: int,
        latency_window: int = 256,
        max_retry_after: int = 30,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigError("max_in_flight", expected="an integer >= 1", received=max_in_flight)
        if max_queue < 0:
            raise ConfigError("max_queue", expected="an integer >= 0", received=max_queue)
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.max_retry_after = max_retry_after
        #: requests waiting for a slot, first come first served; a slot given back passes to
        #: the first one still waiting (``in_flight`` unchanged), else it is freed
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self.in_flight = 0
        self.queued = 0

    def has_room(self) -> bool:
        """Whether a request would run at once (a free slot and nobody waiting for one).

        A request counts as queued until it runs: a slot handed to a waiter that has not yet
        resumed is not free."""
        return self.queued == 0 and self.in_flight < self.max_in_flight

    def hold(self) -> bool:
        """Take a slot at once, without awaiting, when one is free and nobody waits (the fast
        path, which answers without awaiting); False leaves the request to :meth:`admit`.
        :meth:`release` gives the slot back."""
        if not self.has_room():
            return False
        self.in_flight += 1
        return True

    def release(self, seconds: float) -> None:
        """Give back a slot taken by :meth:`hold`, after a request of ``seconds``."""
        self._latencies.append(seconds)
        if self._waiters:
            self._give_back()
        else:
            self.in_flight -= 1

    def _give_back(self) -> None:
        """A slot is given back: to the first request still waiting, else it is free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: in_flight stays
                return
        self.in_flight -= 1

    async def _wait_for_slot(self) -> None:
        """Queue until a slot is handed over; a waiter cancelled (its deadline) leaves the
        queue, or passes on the slot it had just been handed."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.queued += 1
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_back()
            elif waiter in self._waiters:  # not yet skipped by a give-back
                self._waiters.remove(waiter)
            raise
        finally:
            self.queued -= 1

    def admit(self) -> _Admission:
        """``async with controller.admit():`` runs the body once a slot is free; refuses at once
        with OverloadedError when every slot is taken and the queue is full."""
        return _Admission(self)

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the time to drain the queue at recent latency."""
        if not self._latencies:
            return 1
        mean = sum(self._latencies) / len(self._latencies)
        drain = (self.queued + self.in_flight) * mean / self.max_in_flight
        return max(1, min(self.max_retry_after, math.ceil(drain)))


class _Admission:
    """One request's stay in an AdmissionController (a class, not a generator: it is cheaper)."""

    __slots__ = ("controller", "started")

    def __init__(self, controller: AdmissionController) -> None:
        self.controller = controller
        self.started = 0.0

    async def __aenter__(self) -> None:
        c = self.controller
        if c.has_room():
            c.in_flight += 1
        elif c.queued >= c.max_queue:
            raise OverloadedError(
                in_flight=c.in_flight, queued=c.queued, retry_after=c.retry_after()
            )
        else:
            await c._wait_for_slot()
        self.started = time.perf_counter()

    async def __aexit__(self, *exc_info: object) -> None:
        c = self.controller
        c._latencies.append(time.perf_counter() - self.started)
        c._give_back()


@asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """Cancel the body after ``seconds`` and raise DeadlineExceededError (504) instead."""
    if not seconds > 0:
        raise ConfigError("deadline", expected="a number of seconds > 0", received=seconds)
    try:
        async with asyncio.timeout(seconds) as timeout:
            yield
    except TimeoutError:
        if timeout.expired():
            raise DeadlineExceededError(seconds) from None
        raise


class BufferBudget:
    """Bytes of unfinished request bodies held, over all connections, at most ``limit``.

    >>> budget = BufferBudget(10)
    >>> budget.take(8), budget.take(3), budget.held
    (True, False, 8)
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ConfigError("max_buffered_bytes", expected="an integer >= 1", received=limit)
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes held; False (nothing counted) when past the limit."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        """Bytes no longer held (their request was answered, or its connection lost)."""
        self.held -= size
