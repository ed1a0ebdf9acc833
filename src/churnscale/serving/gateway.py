"""The lean ASGI front: ``POST /v1/predict`` answered without FastAPI, the rest passed on.

FastAPI's routing, dependency and body handling cost ~60–100 µs a request here, several times
the work of a prediction, so the hot route is served directly: body read under the byte limit,
msgspec validation, ``encode_one``, compiled trees, orjson. FastAPI still declares the route so
the OpenAPI document describes it. Every other request goes to the FastAPI app with the body
limit enforced on its ``receive`` and is counted in the metrics by its route template.

Before either, the gateway checks the API key a route needs (health probes are open, ``/admin``
needs an admin key), and prediction requests (``POST`` outside ``/admin``) pass admission
control (503 + ``Retry-After`` when saturated) under a deadline (504). Every answer carries
``X-Model-Version`` and ``X-Model-Arm``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnscale.exceptions import ChurnscaleError, DeadlineExceededError, OverloadedError
from churnscale.serving.bodies import (
    JSON,
    declared_length,
    limited_receive,
    media_type,
    read_body,
    too_large,
)
from churnscale.serving.deployment import ArmService, Deployment
from churnscale.serving.errors import (
    InvalidInputError,
    ModelNotReadyError,
    RequestError,
    UnsupportedMediaTypeError,
    error_answer,
)
from churnscale.serving.limits import AdmissionController, deadline
from churnscale.serving.metrics import PredictionTally, ServiceMetrics
from churnscale.serving.security import AccessRole, ApiKeys, key_in_headers, route_role
from churnscale.serving.service import PredictionService
from churnscale.serving.shadow import ShadowScorer

PREDICT_PATH = "/v1/predict"
#: Largest request head (path, query and headers) served; uvicorn itself never sends 431.
MAX_HEADER_BYTES = 16_384
#: The documented boolean: `true` or `false` (not 1/0, which the OpenAPI schema does not allow).
_TRUE = {"true": True, "false": False}
log = logging.getLogger("churnscale.serving")


class ServiceState:
    """What the gateway and the FastAPI app share: the deployment in force (None until ready)."""

    def __init__(self, metrics: ServiceMetrics, *, max_body_bytes: int, reasons: bool) -> None:
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.reasons = reasons
        self.deployment: Deployment | None = None
        self.failure: BaseException | None = None
        self.on_failure: Callable[[], None] | None = None

    @property
    def service(self) -> PredictionService | None:
        """The primary arm's service (batch, protocols, docs), or None while loading."""
        deployment = self.deployment
        return None if deployment is None else deployment.primary.service

    def ready(self) -> PredictionService:
        """The primary service, or :class:`ModelNotReadyError` while it is loading."""
        return self.ready_deployment().primary.service

    def ready_deployment(self) -> Deployment:
        """The deployment in force, or :class:`ModelNotReadyError` while it is loading."""
        deployment = self.deployment
        if deployment is None:
            raise ModelNotReadyError("the model is not loaded yet", field="model")
        return deployment


class Scored(NamedTuple):
    """One answered customer: the validated input, its arm, the answer, its JSON, and the
    deployment that answered it."""

    x: dict[str, Any]
    arm: ArmService
    answer: dict[str, Any]
    payload: bytes
    deployment: Deployment


class Answer(NamedTuple):
    """A ``/v1/predict`` answer ready to write: status, JSON body, the version and arm it names
    (None: no model tags), extra headers, and the scored customer of a 200."""

    status: int
    payload: bytes
    version: str | None
    arm: str
    headers: list[tuple[bytes, bytes]]
    scored: Scored | None


class Guards:
    """Keys, admission, deadline and the shadow scorer the gateway applies."""

    def __init__(
        self,
        *,
        keys: ApiKeys,
        admission: AdmissionController,
        timeout: float,
        delay: float = 0.0,
        shadow: ShadowScorer | None = None,
        cors: bool = False,
    ) -> None:
        self.keys = keys
        self.admission = admission
        self.timeout = timeout
        self.delay = delay
        self.shadow = shadow
        self.cors = cors


class Gateway:
    """ASGI app: keys, then the hot route, then the FastAPI app (docs, batch, admin, protocols)."""

    def __init__(self, app: ASGIApp, state: ServiceState, guards: Guards) -> None:
        self.app = app
        self.state = state
        self.guards = guards
        self.tally = PredictionTally(
            state.metrics.requests.labels(PREDICT_PATH, "200"),
            state.metrics.latency.labels(PREDICT_PATH),
        )
        state.metrics.before_render.append(self.tally.flush)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if (size := header_bytes(scope)) > MAX_HEADER_BYTES:
            detail = f"request headers too large: {size} bytes, limit {MAX_HEADER_BYTES} bytes"
            await send_json(send, 431, orjson.dumps({"detail": detail}), None)
            return
        refusal = self._authorize(scope["headers"], path, method)
        if refusal is not None:
            await refusal(send)
        elif path == PREDICT_PATH and method == "POST":
            await self.predict(scope, receive, send)
        else:
            await self.forward(scope, receive, send)

    def _authorize(
        self, headers: list[tuple[bytes, bytes]], path: str, method: str
    ) -> Callable[[Send], Any] | None:
        """None when the request may go on, else a function that sends the 401/403."""
        keys = self.guards.keys
        if not keys.configured and not path.startswith("/admin"):
            return None  # no keys configured: predict routes open (admin stays refused)
        role = route_role(path)
        if role is None or (method == "OPTIONS" and self.guards.cors):
            return None
        if role is AccessRole.PREDICT and not keys.predict:
            return None
        decision = keys.check(key_in_headers(headers), role)
        if decision.allowed:
            return None
        self.state.metrics.observe("auth", decision.status, 0.0)
        body = orjson.dumps({"detail": decision.detail})
        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
        return lambda send: send_json(send, decision.status, body, None, extra=extra)

    async def predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ``POST /v1/predict`` (admitted, under the deadline, on one arm) through
        the prediction core :meth:`answer`, as the fast path does."""
        started = time.perf_counter()
        guards = self.guards
        try:
            async with asyncio.timeout(guards.timeout), guards.admission.admit():
                deployment = self.state.ready_deployment()
                headers = scope["headers"]
                kind = media_type(headers)
                if kind not in (JSON, ""):
                    raise UnsupportedMediaTypeError(kind, accepted=(JSON,))
                reasons = self._reasons(scope["query_string"])
                body = await read_body(receive, headers, self.state.max_body_bytes)
                if guards.delay:
                    await asyncio.sleep(guards.delay)  # test-only slow model
                answer = self.answer(deployment, body, reasons, started)
        except TimeoutError:  # asyncio.timeout inline: cheaper than the deadline() generator
            answer = self.refused(DeadlineExceededError(guards.timeout), started)
        except Exception as exc:  # refused before the core ran: admission, body, query
            answer = self.refused(exc, started)
        await send_json(
            send,
            answer.status,
            answer.payload,
            answer.version,
            arm=answer.arm,
            extra=answer.headers,
            close=answer.status == 413,  # so the server stops reading the rest of the upload
        )
        if answer.scored is not None:
            self.scored(answer.scored, started)

    # the synchronous core, shared with the fast path (churnscale.serving.fastpath) -----------

    def admits_now(self, headers: list[tuple[bytes, bytes]], head_bytes: int) -> Deployment | None:
        """The deployment when a ``POST /v1/predict`` with these headers may be answered at once
        without awaiting anything; None leaves it to :meth:`predict`, which answers refusals
        (401/403/413/415/431/503) and waits where it must (a full queue, a streamed body)."""
        guards, state = self.guards, self.state
        deployment = state.deployment
        if deployment is None or guards.delay or not guards.admission.has_room():
            return None
        size, length, kind = head_bytes, b"", b""
        for name, value in headers:  # one pass: head size, Content-Length, Content-Type
            size += len(name) + len(value) + 4
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                kind = value
        if size > MAX_HEADER_BYTES or not length.isdigit() or int(length) > state.max_body_bytes:
            return None
        if kind and kind != b"application/json" and media_type([(b"content-type", kind)]) != JSON:
            return None
        keys = guards.keys
        if keys.predict and not keys.check(key_in_headers(headers), AccessRole.PREDICT).allowed:
            return None
        return deployment

    def answer(self, deployment: Deployment, body: bytes, reasons: bool, started: float) -> Answer:
        """The prediction core every ``/v1/predict`` path calls: one customer's JSON body
        validated and answered on the arm it routes to, or the error mapped to its answer
        (counted). It never raises. The caller writes the answer, then, for a 200, calls
        :meth:`scored`."""
        try:
            scored = self.score(deployment, body, reasons)
        except Exception as exc:
            return self.refused(exc, started)
        arm = scored.arm
        return Answer(200, scored.payload, arm.version, arm.name, [], scored)

    def score(self, deployment: Deployment, body: bytes, reasons: bool) -> Scored:
        """Validate one customer's JSON body and answer it on the arm it routes to; a model or
        preprocessor error caused by a value is an :class:`InvalidInputError` (422)."""
        try:
            x = deployment.primary.service.decoder.decode(body)
            arm = deployment.choose(x)
            answer = arm.service.answer(x, reasons=reasons)
        except RequestError:
            raise
        except ChurnscaleError as exc:
            raise InvalidInputError(str(exc), field=exc.field) from None
        return Scored(x, arm, answer, orjson.dumps(answer), deployment)

    def scored(self, scored: Scored, started: float) -> None:
        """Count an answered prediction (buffered: :class:`PredictionTally`) and hand it to
        the shadow model."""
        arm, score = scored.arm, scored.answer["churn_probability"]
        self.tally.add(arm, time.perf_counter() - started, score)
        shadow = scored.deployment.shadow
        if shadow is not None and self.guards.shadow is not None:
            self.guards.shadow.submit(shadow, scored.x, arm, score)

    def refused(self, exc: BaseException, started: float) -> Answer:
        """A ``/v1/predict`` error as answered (:func:`error_answer`) and counted."""
        error = error_answer(exc)
        metrics = self.state.metrics
        metrics.errors.labels(PREDICT_PATH, error.kind).inc()
        metrics.observe(PREDICT_PATH, error.status, time.perf_counter() - started)
        version, arm = _tags(self.state.deployment)
        if error.kind in ("overloaded", "deadline"):
            version = None  # refused before any model was asked
        return Answer(error.status, error.body, version, arm, error.headers, None)

    def _reasons(self, query: bytes) -> bool:
        if not query:
            return self.state.reasons
        reasons, seen = self.state.reasons, False
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key != "reasons":  # a misspelt parameter must not be silently ignored
                raise InvalidInputError(
                    "unknown query parameter; expected: reasons", field=key, location="query"
                )
            if seen:  # which of two values was meant is not ours to guess
                raise InvalidInputError(
                    "given more than once; send it once", field="reasons", location="query"
                )
            seen = True
            if value.lower() not in _TRUE:
                raise InvalidInputError(
                    f"expected true or false, got {value!r}", field="reasons", location="query"
                )
            reasons = _TRUE[value.lower()]
        return reasons

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request to the FastAPI app, with the body limit, version header and metrics;
        prediction requests (POST outside ``/admin``) are admitted under the deadline."""
        started = time.perf_counter()
        limit = self.state.max_body_bytes
        try:
            length = declared_length(scope["headers"])
        except InvalidInputError as bad:
            await send_json(send, 400, orjson.dumps({"detail": bad.message}), None)
            return
        if length is not None and length > limit:
            error = error_answer(too_large(limit))
            version, arm = _tags(self.state.deployment)
            await send_json(send, 413, error.body, version, arm=arm, close=True)
            self.state.metrics.observe("body_limit", 413, time.perf_counter() - started)
            return
        cycle = _ForwardedCycle(self.state, send)
        try:
            await self._run(scope, limited_receive(receive, limit), cycle)
        except (OverloadedError, DeadlineExceededError) as exc:
            if cycle.status is not None:
                raise  # the answer had started: the server cuts it short
            answer = self.refused(exc, started)
            await send_json(send, answer.status, answer.payload, None, extra=answer.headers)
            return
        finally:
            if cycle.status is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.state.metrics.observe(route, cycle.status, time.perf_counter() - started)
                if cycle.status >= 500:
                    self.state.metrics.errors.labels(route, "server").inc()

    async def _run(self, scope: Scope, receive: Receive, cycle: _ForwardedCycle) -> None:
        role = route_role(scope["path"])
        if scope["method"] == "POST" and role in (AccessRole.PREDICT, AccessRole.FEEDBACK):
            async with deadline(self.guards.timeout), self.guards.admission.admit():
                await self.app(scope, receive, cycle.send)
        else:
            await self.app(scope, receive, cycle.send)


_CLOSE = (b"connection", b"close")


def header_bytes(scope: Scope) -> int:
    """Size of a request's head as the server received it: headers, path and query."""
    size: int = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return size + len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")


class _ForwardedCycle:
    """Tags a forwarded response with the version and arm in force when it started."""

    def __init__(self, state: ServiceState, send: Send) -> None:
        self.deployment = state.deployment
        self.state = state
        self.downstream = send
        self.status: int | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            version, arm = _tags(self.deployment or self.state.deployment)
            if version is not None:
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-model-version", version.encode("latin-1")),
                    (b"x-model-arm", arm.encode("latin-1")),
                ]
            if self.status == 413:  # a body past the limit: the rest of it is never read
                message["headers"] = [*message.get("headers", []), _CLOSE]
        await self.downstream(message)


def _tags(deployment: Deployment | None) -> tuple[str | None, str]:
    """The primary arm's version and name (None while loading)."""
    if deployment is None:
        return None, ""
    return deployment.primary.version, deployment.primary.name


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    version: str | None,
    *,
    arm: str = "",
    extra: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
) -> None:
    """Send a complete JSON response (with the model version and arm when known, and
    ``Connection: close`` when ``close``)."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if version is not None:
        headers.append((b"x-model-version", version.encode("latin-1")))
        headers.append((b"x-model-arm", arm.encode("latin-1")))
    if extra:
        headers.extend(extra)
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
