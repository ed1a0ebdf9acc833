"""``POST /v1/predict`` answered inside uvicorn's HTTP protocol, without an ASGI round trip.

Through ASGI every request costs uvicorn a scope, an ``asyncio.Event``, a task, two ``send``
awaits and two socket writes: measured here, that machinery cost more than the prediction. So
when a request's head shows it can be answered at once (:meth:`Gateway.admits_now`: the model
is ready, admission has room, a JSON body of declared length under the limit, the key valid,
no test delay), this protocol buffers its body and answers it synchronously as the last byte
arrives: the gateway's prediction core :meth:`~Gateway.answer` (the same validation, routing,
answer, error mapping, metrics and shadow as the ASGI path), one socket write. Every other
request (another route, a refusal, chunked bodies, HTTP/1.0, ``Expect: 100-continue``,
pipelining behind an ASGI request, a paused transport) takes uvicorn's ASGI path unchanged.
No await happens on the fast path, so there is nothing for the request deadline to cut: the
deadline bounds the waits of the ASGI path (queueing, streamed bodies).

It subclasses uvicorn's ``HttpToolsProtocol`` and uses its internals, so it is tested on one
uvicorn minor version (:data:`TESTED_UVICORN`, the pin in ``pyproject.toml``);
``tests/serving/test_fastpath.py`` fails on any other.
"""

from __future__ import annotations

import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from churnscale.serving.deployment import Deployment
from churnscale.serving.gateway import PREDICT_PATH, Answer, Gateway

#: The uvicorn versions the fast path is tested on (``pyproject.toml`` pins the same range).
TESTED_UVICORN = ">=0.54,<0.55"
_URL = PREDICT_PATH.encode()
_END = b"\r\n\r\n"
#: Response heads by (status, version, arm, close, extra headers), each beside the
#: default-headers list it was built from: uvicorn replaces that list (its ``date``) once a
#: second, which renews the head.
_HEADS: dict[tuple[Any, ...], tuple[list[tuple[bytes, bytes]], bytes]] = {}
_MAX_HEADS = 256


class FastPathProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the hot route answered in place (see the module)."""

    gateway: Gateway  # bound by :func:`fast_path_protocol`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hot: Deployment | None = None
        self._body: list[bytes] = []
        self._started = 0.0
        self._close_after = False

    def on_message_begin(self) -> None:
        """uvicorn's, less the ASGI scope: built by :meth:`_begin_asgi` only for requests that
        take the ASGI path (the fast path needs none)."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _begin_asgi(self) -> None:
        """The scope uvicorn's ``on_message_begin`` builds, around the head parsed so far."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)  # the list the new scope holds

    def on_headers_complete(self) -> None:
        parser = self.parser
        if (
            self.url == _URL
            and parser.get_method() == b"POST"
            and parser.get_http_version() == "1.1"
            and parser.should_keep_alive()
            and not parser.should_upgrade()
            and not self.expect_100_continue
            and (self.cycle is None or self.cycle.response_complete)
            and not self.flow.write_paused
        ):
            self._started = time.perf_counter()
            self._hot = self.gateway.admits_now(self.headers, len(self.url))
            if self._hot is not None:
                self._body = []
                return
        self._begin_asgi()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._hot is not None:
            self._body.append(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        deployment = self._hot
        if deployment is None:
            super().on_message_complete()
            return
        self._hot = None
        gateway, started = self.gateway, self._started
        body, self._body = b"".join(self._body), []
        answer = gateway.answer(deployment, body, gateway.state.reasons, started)
        self._respond(answer)
        if answer.scored is not None:
            gateway.scored(answer.scored, started)
            gateway.guards.admission.record(time.perf_counter() - started)

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
            self._unset_keepalive_if_required()  # pipelined: the previous answer's timer
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def shutdown(self) -> None:
        """Graceful shutdown: a fast-path request whose body is still arriving is answered,
        with ``Connection: close``; otherwise as uvicorn does."""
        if self._hot is not None:
            self._close_after = True
            return
        super().shutdown()


def fast_path_protocol(gateway: Gateway) -> type[FastPathProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``gateway``."""
    return type("FastPathProtocol", (FastPathProtocol,), {"gateway": gateway})


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
