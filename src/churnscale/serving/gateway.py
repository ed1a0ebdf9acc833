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
from functools import partial
from typing import Any, NamedTuple

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

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
    Style,
    UnsupportedMediaTypeError,
    error_answer,
)
from churnscale.serving.exchange import ForwardedCycle, checked_json, header_bytes, send_json, tags
from churnscale.serving.limits import AdmissionController, deadline
from churnscale.serving.metrics import PredictionTally, ServiceMetrics
from churnscale.serving.query import Parser, boolean, parse_query
from churnscale.serving.security import AccessRole, ApiKeys, key_in_headers, route_role
from churnscale.serving.service import PredictionService
from churnscale.serving.shadow import ShadowScorer

PREDICT_PATH = "/v1/predict"
#: Largest request head (path, query and headers) served; uvicorn itself never sends 431.
MAX_HEADER_BYTES = 16_384
#: The query parameters of ``POST /v1/predict``; every other route but the docs takes none.
PREDICT_QUERY: dict[str, Parser] = {"reasons": boolean}
#: Routes whose queries are FastAPI's own (Swagger UI's OAuth2 redirect).
_DOCS = ("/docs", "/redoc")
log = logging.getLogger("churnscale.serving")


class ServiceState:
    """What the gateway and the FastAPI app share: the deployment in force (None until ready)."""

    def __init__(
        self,
        metrics: ServiceMetrics,
        *,
        max_body_bytes: int,
        reasons: bool,
        max_decoded_bytes: int = 256 * 1024**2,
    ) -> None:
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_decoded_bytes = max_decoded_bytes
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


#: :class:`Scored` and :class:`Answer` from a tuple in C, on the hot path (a NamedTuple's
#: generated ``__new__`` is Python and costs several times more).
_scored: Callable[[tuple[Any, ...]], Scored] = partial(tuple.__new__, Scored)
_answer: Callable[[tuple[Any, ...]], Answer] = partial(tuple.__new__, Answer)
_NO_HEADERS: list[tuple[bytes, bytes]] = []  # a 200's extra headers: none (never mutated)


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
        without awaiting anything (the caller then takes an admission slot with
        :meth:`AdmissionController.hold`, which may still refuse); None leaves it to
        :meth:`predict`, which answers refusals (401/403/413/415/431/503) and waits where it
        must (a full queue, a streamed body)."""
        guards, state = self.guards, self.state
        deployment = state.deployment
        if deployment is None or guards.delay:
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
        (counted; a model or preprocessor error caused by a value is an
        :class:`InvalidInputError`, 422). It never raises. The caller writes the answer, then,
        for a 200, calls :meth:`scored`."""
        try:
            x = deployment.primary.service.decoder.decode(body)
            arm = deployment.choose(x)
            answer = arm.service.answer(x, reasons=reasons)
            payload = orjson.dumps(answer)
        except RequestError as exc:
            return self.refused(exc, started)
        except ChurnscaleError as exc:
            return self.refused(InvalidInputError(str(exc), field=exc.field), started)
        except Exception as exc:
            return self.refused(exc, started)
        scored = _scored((x, arm, answer, payload, deployment))
        return _answer((200, payload, arm.version, arm.name, _NO_HEADERS, scored))

    def scored(self, scored: Scored, started: float) -> None:
        """Count an answered prediction (buffered: :class:`PredictionTally`) and hand it to
        the shadow model."""
        arm, score = scored.arm, scored.answer["churn_probability"]
        self.tally.add(arm, time.perf_counter() - started, score)
        shadow = scored.deployment.shadow
        if shadow is not None and self.guards.shadow is not None:
            self.guards.shadow.submit(shadow, scored.x, arm, score)

    def refused(
        self, exc: BaseException, started: float, *, route: str = PREDICT_PATH, style: Style = "v1"
    ) -> Answer:
        """An error as answered (:func:`error_answer`) and counted under ``route``."""
        error = error_answer(exc, style=style)
        metrics = self.state.metrics
        metrics.errors.labels(route, error.kind).inc()
        metrics.observe(route, error.status, time.perf_counter() - started)
        version, arm = tags(self.state.deployment)
        if error.kind in ("overloaded", "deadline"):
            version = None  # refused before any model was asked
        return Answer(error.status, error.body, version, arm, error.headers, None)

    def _reasons(self, query: bytes) -> bool:
        reasons: bool = parse_query(query, PREDICT_QUERY).get("reasons", self.state.reasons)
        return reasons

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request to the FastAPI app, with the body limit, the one query parser, the
        JSON body checks, the version header and metrics; prediction requests (POST outside
        ``/admin``) are admitted under the deadline."""
        started = time.perf_counter()
        limit = self.state.max_body_bytes
        path = scope["path"]
        try:
            length = declared_length(scope["headers"])
        except InvalidInputError as bad:
            await send_json(send, 400, orjson.dumps({"detail": bad.message}), None)
            return
        if length is not None and length > limit:
            error = error_answer(too_large(limit))
            version, arm = tags(self.state.deployment)
            await send_json(send, 413, error.body, version, arm=arm, close=True)
            self.state.metrics.observe("body_limit", 413, time.perf_counter() - started)
            return
        cycle = ForwardedCycle(self.state, send)
        try:
            if not path.startswith(_DOCS):
                parse_query(scope["query_string"], {})
            await self._run(scope, limited_receive(receive, limit), cycle)
        except (RequestError, OverloadedError, DeadlineExceededError) as exc:
            if cycle.status is not None:
                raise  # the answer had started: the server cuts it short
            await self._refuse(send, exc, started, path)
            return
        finally:
            if cycle.status is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.state.metrics.observe(route, cycle.status, time.perf_counter() - started)
                if cycle.status >= 500:
                    self.state.metrics.errors.labels(route, "server").inc()

    async def _refuse(self, send: Send, exc: Exception, started: float, path: str) -> None:
        """Answer a forwarded request the gateway refused: a bad query or JSON body (counted
        as ``request``), or admission and deadline (counted as ``/v1/predict``, as always)."""
        route = "request" if isinstance(exc, RequestError) else PREDICT_PATH
        style: Style = "v2" if path.startswith("/v2") else "v1"
        answer = self.refused(exc, started, route=route, style=style)
        version = answer.version if isinstance(exc, RequestError) else None
        await send_json(
            send,
            answer.status,
            answer.payload,
            version,
            arm=answer.arm,
            extra=answer.headers,
            close=answer.status == 413,  # the rest of the upload is never read
        )

    async def _run(self, scope: Scope, receive: Receive, cycle: ForwardedCycle) -> None:
        role = route_role(scope["path"])
        limit = self.state.max_decoded_bytes
        if scope["method"] == "POST" and role in (AccessRole.PREDICT, AccessRole.FEEDBACK):
            async with deadline(self.guards.timeout), self.guards.admission.admit():
                await self.app(scope, await checked_json(scope, receive, limit), cycle.send)
        else:
            await self.app(scope, await checked_json(scope, receive, limit), cycle.send)
