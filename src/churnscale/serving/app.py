"""The prediction service: ``create_app(settings)`` builds it, the model loads in ``lifespan``.

Routes: ``POST /v1/predict`` (served by the lean :class:`~churnscale.serving.gateway.Gateway`,
declared here for the docs), ``POST /v1/predict/batch``, ``GET /v1/models``, ``/healthz``,
``/readyz``, ``/metrics``, the OpenAPI docs, and the standard protocols of
:mod:`churnscale.serving.protocols`.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from churnscale import __version__
from churnscale.config import Settings
from churnscale.exceptions import ChurnscaleError, ConfigError
from churnscale.serving.bodies import ARROW, ARROW_FILE, BATCH_TYPES, CSV, JSON, read_table
from churnscale.serving.errors import RequestError, UnsupportedMediaTypeError
from churnscale.serving.gateway import Gateway, ServiceState
from churnscale.serving.loading import load_model
from churnscale.serving.metrics import ServiceMetrics
from churnscale.serving.monitoring import ModelMonitor
from churnscale.serving.schemas import (
    BatchResponse,
    ErrorMessage,
    ModelInfo,
    ModelsResponse,
    PredictResponse,
    Status,
)
from churnscale.serving.service import PredictionService

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


def create_app(settings: Settings) -> Gateway:
    """The ASGI app: the hot-path gateway in front of the FastAPI app."""
    if settings.model is None:
        raise ConfigError("model", expected="a bundle path or registry reference", received=None)
    state = ServiceState(
        ServiceMetrics(), max_body_bytes=settings.max_body_bytes, reasons=settings.reasons
    )
    reference = settings.model

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await asyncio.to_thread(_start_service, reference, settings)
        gc.collect()
        gc.freeze()  # start-up objects leave the collector's view: cheaper collections later
        state.metrics.model.labels(service.version, service.predictor.kind).set(1)
        monitor.attach(service)  # live drift window + prediction log for feedback
        state.service = service
        app.openapi_schema = None
        yield
        state.service = None

    api = FastAPI(
        title="churnscale",
        version=__version__,
        summary="Customer churn predictions: single, batch, and standard inference protocols.",
        lifespan=lifespan,
        redirect_slashes=False,  # a path is served as sent, or 404: never redirected
    )
    api.state.serving = state
    api.state.monitor = monitor = ModelMonitor(settings, state.metrics.registry)
    api.add_exception_handler(ChurnscaleError, _error_handler)  # type: ignore[arg-type]
    _add_v1_routes(api)
    from churnscale.serving import feedback, monitoring
    from churnscale.serving.protocols import router

    api.include_router(router)
    api.include_router(monitoring.router)
    api.include_router(feedback.router)
    api.openapi = lambda: _openapi(api, state)  # type: ignore[method-assign]
    return Gateway(api, state)


def _start_service(reference: str, settings: Settings) -> PredictionService:
    service = PredictionService(load_model(reference, settings), settings)
    service.warm()
    return service


async def _error_handler(request: Request, exc: ChurnscaleError) -> JSONResponse:
    body = exc.body() if isinstance(exc, RequestError) else {"detail": exc.message}
    status = exc.http_status if exc.http_status < 500 or isinstance(exc, RequestError) else 500
    if request.url.path.startswith("/v2"):
        body = {"error": exc.message}
    return JSONResponse(body, status_code=status)


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
        request: Request,
        service: ServiceDep,
        state: StateDep,
        reasons: Annotated[bool | None, Query(description="Add top-3 reason codes.")] = None,
    ) -> dict[str, Any]:
        """Churn probability of one customer (served by the lean hot path)."""
        x = service.decoder.decode(await request.body())
        return service.answer(x, reasons=state.reasons if reasons is None else reasons)

    batch_body = {
        JSON: {"schema": {"type": "array", "items": CUSTOMER_REF}},
        CSV: {"schema": {"type": "string"}},
        ARROW: {"schema": {"type": "string", "format": "binary"}},
        ARROW_FILE: {"schema": {"type": "string", "format": "binary"}},
    }

    @api.post(
        "/v1/predict/batch",
        response_model=BatchResponse,
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
        probabilities, ids = await asyncio.to_thread(_predict_batch, service, body, kind)
        predictions = [
            {"customer_id": None if i is None else str(i), "churn_probability": float(p)}
            for i, p in zip(ids, probabilities.tolist(), strict=True)
        ]
        return {"model_version": service.version, "predictions": predictions}

    @api.get("/v1/models", response_model=ModelsResponse, responses=ERRORS, tags=["admin"])
    async def models(service: ServiceDep) -> dict[str, Any]:
        """The model this process serves."""
        return {"models": [model_info(service)]}

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


def _predict_batch(
    service: PredictionService, body: bytes, kind: str
) -> tuple[np.ndarray, list[Any]]:
    if kind == JSON:
        rows = service.decoder.decode_many(body)
        ids = [r.get(service.id) for r in rows] if service.id else [None] * len(rows)
        return service.predict_rows(rows), ids
    return service.predict_table(read_table(body, kind), source=f"request body ({kind})")


def model_info(service: PredictionService) -> dict[str, Any]:
    """The ``/v1/models`` entry of the served model."""
    model = service.model
    return ModelInfo(
        name=service.settings.model_name,
        version=service.version,
        predictor=service.predictor.kind,
        trees=model.booster.num_trees(),
        features=model.feature_names,
        schema=service.schema.to_dict(),
        data_fingerprint=model.metadata.get("data_fingerprint"),
    ).model_dump(by_alias=True)


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
