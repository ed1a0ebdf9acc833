"""The lean ASGI front: ``POST /v1/predict`` answered without FastAPI, the rest passed on.

FastAPI's routing, dependency and body handling cost ~60–100 µs a request here, several times
the work of a prediction, so the hot route is served directly: body read under the byte limit,
msgspec validation, ``encode_one``, compiled trees, orjson. FastAPI still declares the route so
the OpenAPI document describes it. Every other request goes to the FastAPI app with the body
limit enforced on its ``receive`` and is counted in the metrics by its route template.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from churnscale.exceptions import ChurnscaleError
from churnscale.serving.bodies import (
    JSON,
    declared_length,
    limited_receive,
    media_type,
    read_body,
    too_large,
)
from churnscale.serving.errors import (
    InvalidInputError,
    ModelNotReadyError,
    RequestError,
    UnsupportedMediaTypeError,
)
from churnscale.serving.metrics import ServiceMetrics
from churnscale.serving.service import PredictionService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREDICT_PATH = "/v1/predict"
#: Largest request head (path, query and headers) served; uvicorn itself never sends 431.
MAX_HEADER_BYTES = 16_384
_TRUE = {"true": True, "1": True, "false": False, "0": False}
log = logging.getLogger("churnscale.serving")


class ServiceState:
    """What the gateway and the FastAPI app share: the loaded service (None until ready)."""

    def __init__(self, metrics: ServiceMetrics, *, max_body_bytes: int, reasons: bool) -> None:
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.reasons = reasons
        self.service: PredictionService | None = None

    def ready(self) -> PredictionService:
        """The service, or :class:`ModelNotReadyError` while it is loading."""
        if self.service is None:
            raise ModelNotReadyError("the model is not loaded yet", field="model")
        return self.service


class Gateway:
    """ASGI app: the hot route first, then the FastAPI app (docs, batch, admin, protocols)."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.state = state
        self._ok = state.metrics.requests.labels(PREDICT_PATH, "200")
        self._latency = state.metrics.latency.labels(PREDICT_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif (size := header_bytes(scope)) > MAX_HEADER_BYTES:
            detail = f"request headers too large: {size} bytes, limit {MAX_HEADER_BYTES} bytes"
            await send_json(send, 431, orjson.dumps({"detail": detail}), None)
        elif scope["path"] == PREDICT_PATH and scope["method"] == "POST":
            await self.predict(scope, receive, send)
        else:
            await self.forward(scope, receive, send)

    async def predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ``POST /v1/predict``."""
        started = time.perf_counter()
        try:
            service = self.state.ready()
            headers = scope["headers"]
            kind = media_type(headers)
            if kind not in (JSON, ""):
                raise UnsupportedMediaTypeError(kind, accepted=(JSON,))
            reasons = self._reasons(scope["query_string"])
            x = service.decoder.decode(await read_body(receive, headers, self.state.max_body_bytes))
            body = orjson.dumps(service.answer(x, reasons=reasons))
        except RequestError as exc:
            await self._error(send, exc, started)
            return
        except ChurnscaleError as exc:  # a model/preprocessor error caused by a value
            await self._error(send, InvalidInputError(str(exc), field=exc.field), started)
            return
        await send_json(send, 200, body, service.version)
        self._ok.inc()
        self._latency.observe(time.perf_counter() - started)

    def _reasons(self, query: bytes) -> bool:
        if not query:
            return self.state.reasons
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key == "reasons":
                if value.lower() not in _TRUE:
                    raise InvalidInputError(
                        f"expected true or false, got {value!r}", field="reasons"
                    )
                return _TRUE[value.lower()]
        return self.state.reasons

    async def _error(self, send: Send, exc: RequestError, started: float) -> None:
        service = self.state.service
        version = service.version if service is not None else None
        close = exc.http_status == 413  # so the server stops reading the rest of the upload
        await send_json(send, exc.http_status, orjson.dumps(exc.body()), version, close=close)
        self.state.metrics.errors.labels(PREDICT_PATH, exc.kind).inc()
        self.state.metrics.observe(PREDICT_PATH, exc.http_status, time.perf_counter() - started)

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request to the FastAPI app, with the body limit, version header and metrics."""
        started = time.perf_counter()
        limit = self.state.max_body_bytes
        status = 500
        try:
            length = declared_length(scope["headers"])
        except InvalidInputError as bad:
            await send_json(send, 400, orjson.dumps({"detail": bad.message}), None)
            return
        if length is not None and length > limit:
            error = too_large(limit)
            await send_json(send, 413, orjson.dumps(error.body()), self._version(), close=True)
            self.state.metrics.observe("body_limit", 413, time.perf_counter() - started)
            return

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = self._version()
                if version is not None:
                    message["headers"] = [*message.get("headers", []), _version_header(version)]
                if status == 413:  # a body past the limit: the rest of it is never read
                    message["headers"] = [*message.get("headers", []), _CLOSE]
            await send(message)

        try:
            await self.app(scope, limited_receive(receive, limit), tagged)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.state.metrics.observe(route, status, time.perf_counter() - started)
            if status >= 500:
                self.state.metrics.errors.labels(route, "server").inc()

    def _version(self) -> str | None:
        service = self.state.service
        return service.version if service is not None else None


_CLOSE = (b"connection", b"close")


def header_bytes(scope: Scope) -> int:
    """Size of a request's head as the server received it: headers, path and query."""
    size: int = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return size + len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")


def _version_header(version: str) -> tuple[bytes, bytes]:
    return (b"x-model-version", version.encode("latin-1"))


async def send_json(
    send: Send, status: int, body: bytes, version: str | None, *, close: bool = False
) -> None:
    """Send a complete JSON response (with ``Connection: close`` when ``close``)."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if version is not None:
        headers.append(_version_header(version))
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
