"""Admission control for the service: bounded concurrency, deadlines and request-size limits.

* :class:`AdmissionController` lets at most ``max_in_flight`` requests run and ``max_queue`` wait;
  beyond that it refuses at once with :class:`~churnscale.exceptions.OverloadedError` (503)
  carrying a ``Retry-After`` hint computed from recent latency.
* :func:`deadline` bounds a request's time; running past it raises
  :class:`~churnscale.exceptions.DeadlineExceededError` (504).
* :class:`BodyLimitMiddleware` answers 413 as soon as ``Content-Length`` or the streamed body
  passes the limit, without reading the rest, and 431 for oversized request headers.

Header limits and uvicorn: with httptools (the default parser of ``uvicorn[standard]``) uvicorn
sets no limit on the size of request headers; with h11 it answers 400 (not 431) only when an
incomplete request head buffered in memory passes ``h11_max_incomplete_event_size`` (16 KiB by
default), so a head that arrives in one read is accepted whatever its size. Neither sends 431,
so the middleware checks ``max_header_bytes`` itself. Headers are already in memory by then: put
a proxy with its own header limit (an ingress, nginx ``large_client_header_buffers``) in front
of the service to bound that memory.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        self._slots = asyncio.Semaphore(max_in_flight)
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self.in_flight = 0
        self.queued = 0

    def has_room(self) -> bool:
        """Whether a request would run at once (a free slot and nobody waiting for one).

        Read from our own counters (a request counts as queued until it holds its slot), which
        is what ``Semaphore.locked()`` tells at a fraction of its cost on the hot path."""
        return self.queued == 0 and self.in_flight < self.max_in_flight

    def record(self, seconds: float) -> None:
        """Count a request that ran outside :meth:`admit` (the fast path) in the latency window."""
        self._latencies.append(seconds)

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
        if c._slots.locked() and c.queued >= c.max_queue:
            raise OverloadedError(
                in_flight=c.in_flight, queued=c.queued, retry_after=c.retry_after()
            )
        c.queued += 1
        try:
            await c._slots.acquire()
        finally:
            c.queued -= 1
        c.in_flight += 1
        self.started = time.perf_counter()

    async def __aexit__(self, *exc_info: object) -> None:
        c = self.controller
        c._latencies.append(time.perf_counter() - self.started)
        c.in_flight -= 1
        c._slots.release()


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


async def send_json_error(
    send: Send, status: int, detail: str, *, headers: dict[str, str] | None = None
) -> None:
    """Answer a request with ``{"detail": ...}`` and close the connection afterwards."""
    body = orjson.dumps({"detail": detail})
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimitMiddleware:
    """ASGI middleware: 413 past ``max_bytes`` of body, 431 past ``max_header_bytes`` of headers.

    A declared ``Content-Length`` over the limit is refused before the app runs. A chunked body is
    counted as the app reads it; the read that passes the limit sends the 413 (with
    ``Connection: close``, so the server drops the rest of the upload) and tells the app the
    client disconnected; anything the app sends afterwards is discarded. If the app has already
    started its response, the response is cut short instead.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, *, max_header_bytes: int = 16_384) -> None:
        if max_bytes < 0:
            raise ConfigError("max_bytes", expected="an integer >= 0", received=max_bytes)
        if max_header_bytes < 1:
            raise ConfigError(
                "max_header_bytes", expected="an integer >= 1", received=max_header_bytes
            )
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal, declared = self._check_head(scope)
        if refusal is not None:
            await send_json_error(send, *refusal)
        elif declared:  # the server delivers at most Content-Length bytes: nothing to count
            await self.app(scope, receive, send)
        else:
            await _LimitedCycle(self.app, self.max_bytes, receive, send).run(scope)

    def _check_head(self, scope: Scope) -> tuple[tuple[int, str] | None, bool]:
        """A (status, detail) refusal for oversized headers or a bad or too large
        Content-Length, and whether an acceptable Content-Length alone frames the body."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        size += len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if size > self.max_header_bytes:
            detail = f"request headers too large: {size} bytes, limit {self.max_header_bytes} bytes"
            return (431, detail), False
        declared = chunked = False
        for name, value in headers:
            if name == b"transfer-encoding":
                chunked = True
            elif name == b"content-length":
                if not value.isdigit():
                    return (400, f"invalid Content-Length header: {value[:40]!r}"), False
                if int(value) > self.max_bytes:
                    detail = _too_large(self.max_bytes, f"Content-Length {int(value)}")
                    return (413, detail), False
                declared = True
        return None, declared and not chunked


class _LimitedCycle:
    """One request/response cycle whose body is counted as the app reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int, receive: Receive, send: Send) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.downstream_receive = receive
        self.downstream_send = send
        self.received = 0
        self.started = False
        self.refused = False

    async def run(self, scope: Scope) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except Exception:
            if not self.refused:
                raise
            # the app failed on the disconnect this cycle reported after answering 413

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.downstream_receive()
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received <= self.max_bytes:
            return message
        self.refused = True
        if not self.started:
            detail = _too_large(self.max_bytes, f"body of more than {self.max_bytes}")
            await send_json_error(self.downstream_send, 413, detail)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.downstream_send(message)


def _too_large(limit: int, what: str) -> str:
    return f"request body too large: {what} bytes, limit {limit} bytes"
