"""The prediction service: ``create_app(settings)`` builds it, the model loads in ``lifespan``.

Routes: ``POST /v1/predict`` (answered by the lean :class:`~churnscale.serving.gateway.Gateway`;
the route here is a schema stub for the docs), ``POST /v1/predict/batch``, ``GET /v1/models``,
``/healthz``, ``/readyz``, ``/metrics``, ``POST /admin/reload``, the OpenAPI docs, and the
standard protocols of :mod:`churnscale.serving.protocols`. Batch and protocol routes are
answered by the primary (first) arm; ``/v1/predict`` by the customer's arm.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from churnscale.config import Settings
from churnscale.exceptions import ChurnscaleError
from churnscale.serving.bodies import ARROW, ARROW_FILE, BATCH_TYPES, CSV, JSON, read_table
from churnscale.serving.decoded import check_json
from churnscale.serving.deployment import Deployment, routing_from_settings
from churnscale.serving.docs import docs_router
from churnscale.serving.errors import InvalidInputError, UnsupportedMediaTypeError, error_answer
from churnscale.serving.experiment import ExperimentLog, experiment_log
from churnscale.serving.gateway import Gateway, Guards, ServiceState
from churnscale.serving.limits import AdmissionController
from churnscale.serving.losses import batch_answers
from churnscale.serving.metrics import ServiceMetrics
from churnscale.serving.monitoring import ModelMonitor
from churnscale.serving.reload import Reloader, ReloadFailure, ReloadRequest
from churnscale.serving.schemas import (
    ArmsRequest,
    ArmsResponse,
    BatchResponse,
    ErrorMessage,
    ModelInfo,
    ModelsResponse,
    PredictResponse,
    Status,
)
from churnscale.serving.security import ApiKeys
from churnscale.serving.service import PredictionService
from churnscale.serving.shadow import ShadowScorer
from churnscale.serving.uplift_outputs import (
    add_to_answers,
    decisions_of_rows,
    decisions_of_table,
)
from churnscale.version import __version__

Validated = TypeVar("Validated", bound=BaseModel)
CUSTOMER_REF = {"$ref": "#/components/schemas/Customer"}
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorMessage, "description": "Body or batch over the limit"},
    415: {"model": ErrorMessage, "description": "Unsupported content type"},
    503: {"model": ErrorMessage, "description": "Model not loaded yet"},
}


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.serving
    return state


def _service(request: Request) -> PredictionService:
    return _state(request).ready()


ServiceDep = Annotated[PredictionService, Depends(_service)]
StateDep = Annotated[ServiceState, Depends(_state)]


log = logging.getLogger("churnscale.serving")


def create_app(settings: Settings, *, background_load: bool = False) -> Gateway:
    """The ASGI app: the hot-path gateway in front of the FastAPI app.

    With ``background_load`` the lifespan returns at once and the models load behind it
    (``/healthz`` answers, ``/readyz`` is 503 until they are warm); a failed first load sets
    ``state.failure`` and calls ``state.on_failure`` (the server uses it to exit).
    """
    routing = routing_from_settings(settings)
    state = ServiceState(
        ServiceMetrics(),
        max_body_bytes=settings.max_body_bytes,
        reasons=settings.reasons,
        max_decoded_bytes=settings.max_decoded_bytes,
    )
    reloader = Reloader(state, settings, routing)
    shadow = ShadowScorer(settings.resolved_shadow_log(), state.metrics) if routing.shadow else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if shadow is not None:
            shadow.start()
        tasks: list[asyncio.Task[None]] = []
        loading = asyncio.create_task(_load(app, state, reloader, settings, tasks))
        tasks.append(loading)
        if not background_load:
            await loading
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if shadow is not None:
            await asyncio.to_thread(shadow.close)
        state.deployment = None
        state.metrics.ready.set(0)

    api = FastAPI(
        title="churnscale",
        version=__version__,
        summary="Customer churn predictions: single, batch, and standard inference protocols.",
        lifespan=lifespan,
        redirect_slashes=False,  # a path is served as sent, or 404: never redirected
        docs_url=None,  # FastAPI's pages load Swagger UI / ReDoc from a CDN: ours, see docs.py
        redoc_url=None,
    )
    api.state.serving = state
    api.state.max_decoded_bytes = settings.max_decoded_bytes
    api.state.monitor = monitor = ModelMonitor(settings, state.metrics.registry)
    api.state.reloader = reloader
    experiment = experiment_log(settings)
    if experiment is not None:  # action arms logged; outcomes joined from /v1/feedback
        monitor.feedback.subscribe(lambda fb: experiment.outcome(fb.customer_id, fb.churned))
    # drift window + feedback (+ the experiment's assignments) on every deploy
    reloader.on_deploy = partial(_watch, monitor, experiment)
    api.add_exception_handler(ChurnscaleError, _error_handler)  # type: ignore[arg-type]
    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["X-Model-Version", "X-Model-Arm"],
        )
    _add_v1_routes(api)
    from churnscale.serving import feedback, monitoring

    _add_admin_routes(api)
    from churnscale.serving.protocols import router

    api.include_router(router)
    api.include_router(monitoring.router)
    api.include_router(feedback.router)
    api.include_router(docs_router(settings.docs_assets))
    api.openapi = lambda: _openapi(api, state)  # type: ignore[method-assign]
    guards = Guards(
        keys=ApiKeys.from_settings(settings),
        admission=AdmissionController(
            max_in_flight=settings.max_in_flight, max_queue=settings.max_queue
        ),
        timeout=settings.request_timeout_s,
        delay=settings.predict_delay_s,
        shadow=shadow,
        cors=bool(settings.cors_origins),
    )
    return Gateway(api, state, guards)


def _watch(monitor: ModelMonitor, experiment: ExperimentLog | None, deployment: Deployment) -> None:
    """Attach the live monitor (the primary feeds drift) and the experiment to every arm of a
    new deployment."""
    for name, arm in deployment.arms.items():
        arm.service.experiment = experiment
        monitor.attach(
            arm.service, arm=None if deployment.single else name, primary=arm is deployment.primary
        )


async def _load(
    app: FastAPI,
    state: ServiceState,
    reloader: Reloader,
    settings: Settings,
    tasks: list[asyncio.Task[None]],
) -> None:
    """Load and warm the first deployment; then watch the references when configured."""
    try:
        await reloader.start()
    except Exception as exc:
        state.failure = exc
        log.error("the model failed to load: %s", exc)
        if state.on_failure is not None:
            state.on_failure()
        raise
    gc.collect()
    gc.freeze()  # start-up objects leave the collector's view: cheaper collections later
    app.openapi_schema = None
    if settings.reload_poll_s is not None:
        tasks.append(asyncio.create_task(reloader.watch(settings.reload_poll_s)))


def _add_admin_routes(api: FastAPI) -> None:
    @api.post(
        "/admin/reload",
        tags=["admin"],
        responses={
            400: {"model": ErrorMessage, "description": "Bad reference or bundle name"},
            404: {"model": ErrorMessage, "description": "No such model"},
            409: {"model": ErrorMessage, "description": "Input schema incompatible"},
            422: {"model": ErrorMessage, "description": "Corrupt or truncated bundle"},
            401: {"model": ErrorMessage, "description": "No API key"},
            403: {"model": ErrorMessage, "description": "Not an admin key, or no admin keys set"},
            503: {"model": ErrorMessage, "description": "Registry unreachable, or not ready"},
        },
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {JSON: {"schema": ReloadRequest.model_json_schema()}},
            }
        },
    )
    async def reload(request: Request) -> JSONResponse:
        """Load, verify and warm a new model for an arm (or re-resolve every reference), then
        swap it in; on failure the previous models keep serving. Needs an admin key."""
        body = await request.body()
        wanted = _validated(ReloadRequest, body, request) if body.strip() else ReloadRequest()
        reloader: Reloader = request.app.state.reloader
        try:
            report = await reloader.reload(wanted)
        except ReloadFailure as failure:
            return JSONResponse(failure.body, status_code=failure.status)
        return JSONResponse(report)


async def _error_handler(request: Request, exc: ChurnscaleError) -> Response:
    """Every :class:`ChurnscaleError` a route raises, answered by :func:`error_answer`."""
    error = error_answer(exc, style="v2" if request.url.path.startswith("/v2") else "v1")
    headers = {name.decode(): value.decode() for name, value in error.headers}
    return Response(error.body, error.status, headers, media_type=JSON)


def _add_v1_routes(api: FastAPI) -> None:
    @api.post(
        "/v1/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses={**ERRORS, 422: {"description": "Invalid customer (the field is named)"}},
        openapi_extra={
            "requestBody": {"required": True, "content": {JSON: {"schema": CUSTOMER_REF}}}
        },
        tags=["predict"],
    )
    async def predict(
        reasons: Annotated[bool | None, Query(description="Add top-3 reason codes.")] = None,
    ) -> dict[str, Any]:
        """Churn probability of one customer.

        A schema stub: this route only declares the operation for the OpenAPI document.
        :class:`~churnscale.serving.gateway.Gateway` answers every ``POST /v1/predict`` before
        FastAPI sees it (its prediction core :meth:`~Gateway.answer`, also called by the fast
        path), so this body never runs."""
        raise NotImplementedError("POST /v1/predict is answered by the gateway")

    batch_body = {
        JSON: {"schema": {"type": "array", "items": CUSTOMER_REF}},
        CSV: {"schema": {"type": "string"}},
        ARROW: {"schema": {"type": "string", "format": "binary"}},
        ARROW_FILE: {"schema": {"type": "string", "format": "binary"}},
    }

    @api.post(
        "/v1/predict/batch",
        response_model=BatchResponse,
        response_model_exclude_unset=True,  # value and expected_loss only where a row had one
        responses={**ERRORS, 422: {"description": "Invalid row (row and field named)"}},
        openapi_extra={"requestBody": {"required": True, "content": batch_body}},
        tags=["predict"],
    )
    async def predict_batch(request: Request, service: ServiceDep) -> dict[str, Any]:
        """Churn probabilities of many customers: a JSON array, CSV, or Arrow IPC body."""
        kind = request.headers.get("content-type", JSON).split(";", 1)[0].strip().lower()
        if kind not in BATCH_TYPES:
            raise UnsupportedMediaTypeError(kind, accepted=BATCH_TYPES)
        body = await request.body()
        outputs, ids, values, decided = await asyncio.to_thread(_predict_batch, service, body, kind)
        predictions = batch_answers(ids, outputs, values)
        add_to_answers(predictions, decided)  # an uplift model's uplift and action
        return {"model_version": service.version, "predictions": predictions}

    @api.post(
        "/v1/arms",
        response_model=ArmsResponse,
        responses={**ERRORS, 422: {"description": "Invalid body (the field is named)"}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ArmsRequest.model_json_schema()}},
            }
        },
        tags=["predict"],
    )
    async def arms(request: Request, state: StateDep) -> dict[str, Any]:
        """The A/B arm that serves each customer id (sticky: the same on every process and run)."""
        deployment = state.ready_deployment()
        wanted = _validated(ArmsRequest, await request.body(), request)
        deployment.primary.service.check_rows(len(wanted.customer_ids))
        return {
            "experiment": deployment.routing.experiment,
            "arms": [deployment.arm_of(str(c)) for c in wanted.customer_ids],
            "versions": {name: arm.version for name, arm in deployment.arms.items()},
        }

    @api.get("/v1/models", response_model=ModelsResponse, responses=ERRORS, tags=["admin"])
    async def models(service: ServiceDep) -> dict[str, Any]:
        """The model this process serves."""
        return {"models": [ModelInfo.of(service)]}

    @api.get("/healthz", response_model=Status, tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @api.get("/readyz", response_model=Status, responses=ERRORS, tags=["health"])
    async def readyz(service: ServiceDep) -> dict[str, str]:
        """Readiness: the model is loaded and warmed (503 before)."""
        return {"status": "ready", "model_version": service.version}

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        tags=["admin"],
    )
    async def metrics(state: StateDep) -> Response:
        """Prometheus metrics of this process."""
        return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _validated(kind: type[Validated], body: bytes, request: Request) -> Validated:
    """``body`` as ``kind`` (within the decoded-size limit); the first problem becomes a 422
    naming its field."""
    check_json(body, request.app.state.max_decoded_bytes)
    try:
        return kind.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInputError(first["msg"], field=field) from None


def _predict_batch(
    service: PredictionService, body: bytes, kind: str
) -> tuple[
    dict[str, np.ndarray], list[Any], list[float | None] | None, dict[str, np.ndarray] | None
]:
    limit = service.settings.max_decoded_bytes
    if kind == JSON:
        check_json(body, limit)
        rows = service.decoder.decode_many(body)
        ids = [r.get(service.id) for r in rows] if service.id else [None] * len(rows)
        values = service.row_values(rows)
        return service.outputs_of_rows(rows), ids, values, decisions_of_rows(service, rows)
    table = read_table(body, kind, max_decoded=limit)
    source = f"request body ({kind})"
    decided = decisions_of_table(service, table, source=source)
    return (*service.score_table(table, source=source), decided)


def _openapi(api: FastAPI, state: ServiceState) -> dict[str, Any]:
    """The OpenAPI document, with ``Customer`` generated from the served model's schema."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    document = get_openapi(
        title=api.title, version=api.version, summary=api.summary, routes=api.routes
    )
    service = state.service
    customer = (
        service.decoder.json_schema()
        if service is not None
        else {"type": "object", "description": "Known once the model is loaded."}
    )
    document.setdefault("components", {}).setdefault("schemas", {})["Customer"] = customer
    if service is not None:
        api.openapi_schema = document
    return document
