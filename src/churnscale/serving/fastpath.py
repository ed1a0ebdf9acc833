"""``POST /v1/predict`` answered inside uvicorn's HTTP protocol, without an ASGI round trip.

Through ASGI every request costs uvicorn a scope, an ``asyncio.Event``, a task, two ``send``
awaits and two socket writes: measured here, that machinery cost more than the prediction. So
when a request's head shows it can be answered at once (:meth:`Gateway.admits_now`: the model
is ready, a JSON body of declared length under the limit, the key valid, no test delay; and an
admission slot free), this protocol buffers its body and answers it synchronously as the last byte
arrives: the gateway's prediction core :meth:`~Gateway.answer` (the same validation, routing,
answer, error mapping, metrics and shadow as the ASGI path), one socket write. Every other
request (another route, a refusal, chunked bodies, HTTP/1.0, ``Expect: 100-continue``,
pipelining behind an ASGI request, a paused transport) takes uvicorn's ASGI path unchanged.
A fast-path request holds an admission slot (:meth:`AdmissionController.hold`) from its head
to its answer, and the request deadline runs from its head: a body still arriving at it is
answered 504 and the connection closed, as on the ASGI path.

Every connection, whichever path its requests take, is held to the slow-client limits: a
connection that sends no complete request head within ``header_timeout_s`` is closed (408
first when a head had begun: slowloris), a request body not complete ``body_timeout_s`` after
its head is answered 408 and closed, and the bytes of request bodies held, over all connections,
are counted in one :class:`BufferBudget` (``max_buffered_bytes``; the body that passes it is
answered 503 and its connection closed). uvicorn's ``limit_concurrency`` (``max_connections``)
answers 503 to requests beyond the connection cap; the fast path leaves those to it.

It subclasses uvicorn's ``HttpToolsProtocol`` and uses its internals, so it is tested on one
uvicorn minor version (:data:`TESTED_UVICORN`, the pin in ``pyproject.toml``);
``tests/serving/test_fastpath.py`` fails on any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from churnscale.config import Settings
from churnscale.exceptions import DeadlineExceededError
from churnscale.serving.deployment import Deployment
from churnscale.serving.errors import BuffersFullError, RequestTimeoutError
from churnscale.serving.gateway import PREDICT_PATH, Answer, Gateway
from churnscale.serving.limits import BufferBudget

#: The uvicorn versions the fast path is tested on (``pyproject.toml`` pins the same range).
TESTED_UVICORN = ">=0.54,<0.55"
_URL = PREDICT_PATH.encode()
_END = b"\r\n\r\n"
#: Response heads by (status, version, arm, close, extra headers), each beside the
#: default-headers list it was built from: uvicorn replaces that list (its ``date``) once a
#: second, which renews the head.
_HEADS: dict[tuple[Any, ...], tuple[list[tuple[bytes, bytes]], bytes]] = {}
_MAX_HEADS = 256
_NO_LIMIT = 1 << 62
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class FastPathProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the hot route answered in place and every connection
    held to its timeouts and the body budget (see the module)."""

    gateway: Gateway  # bound by :func:`fast_path_protocol`, with the four below
    fast: bool
    head_timeout: float
    body_timeout: float
    budget: BufferBudget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hot: Deployment | None = None
        self._body: list[bytes] = []
        self._started = 0.0
        self._close_after = False
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0  # loop time the head (or, once complete, the body) began
        self._begun = False  # a request head has begun arriving
        self._body_due = False  # an ASGI request's body is still arriving
        self._discarding = False  # the rest of a refused body is dropped
        self._held = 0  # bytes of this connection's bodies counted in the budget
        self._keepalive: asyncio.TimerHandle | None = None  # see :meth:`_keepalive_due`
        self._idle_from = 0.0  # loop time of the last answer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self.loop.time()
        self._watch(self.head_timeout, self._head_late)  # a connection that never sends a byte

    def data_received(self, data: bytes) -> None:
        """uvicorn's; then, for what is still awaited (if anything: a request that arrives whole
        in one read needs nothing), its timer and the budget count of its body so far."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
        super().data_received(data)
        if not (self._begun or self._hot is not None or self._body_due):
            return
        if self.transport.is_closing():
            return
        if self._begun:
            self._watch(self.head_timeout, self._head_late)
        elif self._hot is not None:
            if not self._count_hot_body():
                return
            timeout = self.gateway.guards.timeout
            if self.body_timeout < timeout:
                self._watch(self.body_timeout, self._body_late)
            else:
                self._watch(timeout, self._deadline_passed)
        else:
            self._watch(self.body_timeout, self._body_late)

    def _count_hot_body(self) -> bool:
        """Count the fast-path body received so far, unfinished at the end of a read, in the
        buffer budget (a body that completes in the read it arrived in is answered before
        anything else runs, so it is never held); False: refused, past the budget."""
        size = sum(map(len, self._body)) - self._held
        if not self.budget.take(size):
            self._refuse(BuffersFullError(self.budget.limit))
            return False
        self._held += size
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        self._release_body()
        if self._hot is not None:
            self._hot = None
            self.gateway.guards.admission.release(time.perf_counter() - self._started)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """uvicorn's, less the ASGI scope: built by :meth:`_begin_asgi` only for requests that
        take the ASGI path (the fast path needs none); the head timeout starts."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._begun = True
        self._since = 0.0  # this read's time, taken only if a timer is armed (:meth:`_watch`)

    def _begin_asgi(self) -> None:
        """The scope uvicorn's ``on_message_begin`` builds, around the head parsed so far."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)  # the list the new scope holds

    def on_headers_complete(self) -> None:
        self._begun = False
        self._since = 0.0  # as in on_message_begin
        parser = self.parser
        if (
            self.fast
            and self.url == _URL
            and parser.get_method() == b"POST"
            and parser.get_http_version() == "1.1"
            and parser.should_keep_alive()
            and not parser.should_upgrade()
            and not self.expect_100_continue
            and (self.cycle is None or self.cycle.response_complete)
            and not self.flow.write_paused
            and len(self.connections) < (self.limit_concurrency or _NO_LIMIT)
        ):
            self._started = time.perf_counter()
            self._hot = self.gateway.admits_now(self.headers, len(self.url))
            if self._hot is not None and self.gateway.guards.admission.hold():
                self._body = []
                return
            self._hot = None
        self._begin_asgi()
        super().on_headers_complete()
        self._body_due = any(n in _BODY_HEADERS and v != b"0" for n, v in self.headers)

    def on_body(self, body: bytes) -> None:
        if self._hot is not None:  # counted by :meth:`_count_hot_body` if unfinished
            self._body.append(body)
            return
        if self._discarding:
            return
        if not self.budget.take(len(body)):
            self._refuse(BuffersFullError(self.budget.limit))
            return
        self._held += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_due = False
        if self._discarding:
            self._discarding = False
            return
        deployment = self._hot
        if deployment is None:
            super().on_message_complete()
            return
        self._hot = None
        gateway, started = self.gateway, self._started
        body, self._body = b"".join(self._body), []
        answer = gateway.answer(deployment, body, gateway.state.reasons, started)
        if self._held:
            self._release_body()
        self._respond(answer)
        if answer.scored is not None:
            gateway.scored(answer.scored, started)
        gateway.guards.admission.release(time.perf_counter() - started)

    def on_response_complete(self) -> None:
        self._release_body()  # an ASGI request's body is held until it is answered
        self._idle_from = self.loop.time()  # uvicorn arms its own keep-alive timer
        super().on_response_complete()

    # timeouts and refusals ----------------------------------------------------------------

    def _watch(self, seconds: float, expired: Callable[[], None]) -> None:
        """Call ``expired`` ``seconds`` after :attr:`_since` (at once if that is past; from now
        when it is unset: what is awaited began in this read)."""
        if not self._since:
            self._since = self.loop.time()
        self._timer = self.loop.call_at(self._since + seconds, expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release_body(self) -> None:
        self.budget.give(self._held)
        self._held = 0

    def _head_late(self) -> None:
        """No complete head in time: 408 once it has begun; an idle connection just closes."""
        self._timer = None
        if self._begun and (self.cycle is None or self.cycle.response_complete):
            self._refuse(RequestTimeoutError("head", self.head_timeout))
        elif not self.transport.is_closing():
            self.transport.close()

    def _body_late(self) -> None:
        """A body not complete in time: 408 unless its (ASGI) answer has begun."""
        self._timer = None
        if self._hot is not None or (self.cycle is not None and not self.cycle.response_started):
            self._refuse(RequestTimeoutError("body", self.body_timeout))
        elif not self.transport.is_closing():
            self.transport.close()

    def _deadline_passed(self) -> None:
        """A fast-path request still receiving its body at the deadline: 504, as on ASGI."""
        self._timer = None
        self._refuse(DeadlineExceededError(self.gateway.guards.timeout))

    def _refuse(self, exc: Exception) -> None:
        """Answer ``exc`` at once (:meth:`Gateway.refused`) and close the connection; an ASGI
        request waiting for the rest of its body sees the client gone."""
        hot = self._hot is not None
        started = self._started if hot else time.perf_counter()
        if hot:
            self._hot, self._body = None, []
            self.gateway.guards.admission.release(time.perf_counter() - started)
        self._discarding = True
        self._release_body()
        if self.transport.is_closing():
            return
        self._close_after = True
        route = PREDICT_PATH if hot else "connection"
        self._respond(self.gateway.refused(exc, started, route=route))

    def _respond(self, answer: Answer) -> None:
        """One write: the response head (cached, see :func:`_head`), its length, the body; then
        what uvicorn does after every response (count it, arm the keep-alive timer)."""
        defaults, close, payload = (
            self.server_state.default_headers,
            self._close_after,
            answer.payload,
        )
        key = (answer.status, answer.version, answer.arm, close, *answer.headers)
        cached = _HEADS.get(key)
        if cached is None or cached[0] is not defaults:
            if len(_HEADS) >= _MAX_HEADS:
                _HEADS.clear()
            cached = _HEADS[key] = (defaults, _head(answer, defaults, close))
        self.transport.write(b"".join((cached[1], str(len(payload)).encode(), _END, payload)))
        self.server_state.total_requests += 1
        if close:
            self.transport.close()
        elif not self.transport.is_closing():
            self._idle_from = self.loop.time()
            if self._keepalive is None:
                self._keepalive = self.loop.call_at(
                    self._idle_from + self.timeout_keep_alive, self._keepalive_due
                )

    def _keepalive_due(self) -> None:
        """The keep-alive timeout of fast-path answers, armed lazily: one timer a connection,
        moved on only when it fires (uvicorn cancels and re-creates its timer for every answer:
        1.7 µs of a request's ~20 here). An idle connection closes ``timeout_keep_alive``
        after its last answer, as uvicorn's would; one with a request under way is left to that
        request's own timers, and its answer arms the keep-alive again."""
        self._keepalive = None
        cycle = self.cycle
        if (
            self.transport.is_closing()
            or self._begun
            or self._hot is not None
            or self._body_due
            or (cycle is not None and not cycle.response_complete)
        ):
            return
        due = self._idle_from + self.timeout_keep_alive
        if self.loop.time() < due:
            self._keepalive = self.loop.call_at(due, self._keepalive_due)
        else:
            self.timeout_keep_alive_handler()

    def shutdown(self) -> None:
        """Graceful shutdown: a fast-path request whose body is still arriving is answered,
        with ``Connection: close``; otherwise as uvicorn does."""
        if self._hot is not None:
            self._close_after = True
            return
        super().shutdown()


def fast_path_protocol(gateway: Gateway, settings: Settings) -> type[FastPathProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``gateway``, with the
    timeouts and the body budget of ``settings`` (the hot route only with ``fast_path``)."""
    bound = {
        "gateway": gateway,
        "fast": settings.fast_path,
        "head_timeout": settings.header_timeout_s,
        "body_timeout": settings.body_timeout_s,
        "budget": BufferBudget(settings.max_buffered_bytes),
    }
    return type("FastPathProtocol", (FastPathProtocol,), bound)


def _head(answer: Answer, defaults: list[tuple[bytes, bytes]], close: bool) -> bytes:
    """Status line, uvicorn's default headers, ours, ending with ``content-length: ``."""
    head = [STATUS_LINE[answer.status]]
    for name, value in [*defaults, (b"content-type", b"application/json"), *answer.headers]:
        head += [name, b": ", value, b"\r\n"]
    if answer.version is not None:
        head += [b"x-model-version: ", answer.version.encode(), b"\r\n"]
        head += [b"x-model-arm: ", answer.arm.encode(), b"\r\n"]
    if close:
        head.append(b"connection: close\r\n")
    head.append(b"content-length: ")
    return b"".join(head)
