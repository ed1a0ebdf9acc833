"""The ecosystem's inference protocols, answered by the same :class:`PredictionService`.

- **Open Inference Protocol v2** (KServe, Triton, MLServer): ``/v2/health/live``,
  ``/v2/health/ready``, ``/v2/models/{name}``, ``/v2/models/{name}/ready``,
  ``POST /v2/models/{name}/infer``. One input tensor per feature column (FP64 numerics, BOOL
  booleans, BYTES categories and dates), ``shape`` ``[n]`` or ``[n, 1]``; the output tensor is
  ``churn_probability`` (FP64), then a survival model's other outputs (``survival_H``,
  ``churn_within_H``, ``restricted_mean_H``), with ``value`` and ``expected_loss`` (and
  ``expected_loss_H``) when the request carries the value field's tensor. JSON tensors or
  Triton's binary data extension (:mod:`~churnscale.serving.v2_binary`); a missing value is
  ``null``, ``NaN`` or an empty BYTES element (:mod:`~churnscale.serving.v2_tensors`).
- **SageMaker** container contract: ``GET /ping``, ``POST /invocations``.
- **MLflow scoring** on ``/invocations``: ``dataframe_split``, ``dataframe_records`` (and
  ``instances`` / ``inputs`` as lists of records), or a ``text/csv`` body; the answer is
  ``{"predictions": [...]}``; a survival model adds ``outputs``, a list per other output by
  name; ``value`` and ``expected_loss`` lists (null where a row has none; ``expected_loss_H``
  under ``outputs``) come when some row carries a value (a record's value field, a CSV column
  of that name).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from churnscale.serving.bodies import CSV, JSON, read_table
from churnscale.serving.decoded import check_json
from churnscale.serving.errors import InvalidInputError, UnsupportedMediaTypeError
from churnscale.serving.gateway import ServiceState
from churnscale.serving.losses import output_lists
from churnscale.serving.schemas import (
    ErrorMessage,
    Predictions,
    Status,
    V2Error,
    V2InferResponse,
    V2ModelMetadata,
)
from churnscale.serving.service import PredictionService
from churnscale.serving.uplift_outputs import decision_lists, decisions_of_rows, decisions_of_table
from churnscale.serving.v2_binary import (
    BINARY,
    HEADER_LENGTH,
    binary_answer,
    header_length,
    read_request,
    wants_binary,
)
from churnscale.serving.v2_tensors import (
    customer_rows,
    json_data,
    model_metadata,
    output_columns,
    output_names,
    score_rows,
)
from churnscale.version import __version__

router = APIRouter()
V2_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": V2Error} for code in (400, 404, 413, 415, 422, 503)
}
NameParam = Annotated[str, Path(description="Model name (the model_name setting).")]


def _service(request: Request) -> PredictionService:
    state: ServiceState = request.app.state.serving
    return state.ready()


ServiceDep = Annotated[PredictionService, Depends(_service)]


def _named(service: PredictionService, name: str) -> PredictionService:
    if name != service.settings.model_name:
        from churnscale.exceptions import ModelNotFoundError

        raise ModelNotFoundError(name, f"this server serves {service.settings.model_name!r}")
    return service


@router.get("/v2", tags=["v2"])
async def v2_server() -> dict[str, Any]:
    """Server metadata."""
    return {"name": "churnscale", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/v2/health/live", response_model=Status, tags=["v2"])
async def v2_live() -> dict[str, str]:
    """Liveness."""
    return {"status": "live"}


@router.get("/v2/health/ready", response_model=Status, responses=V2_ERRORS, tags=["v2"])
async def v2_ready(service: ServiceDep) -> dict[str, str]:
    """Readiness (503 until the model is loaded)."""
    return {"status": "ready", "model_version": service.version}


@router.get("/v2/models/{name}", response_model=V2ModelMetadata, responses=V2_ERRORS, tags=["v2"])
async def v2_model(name: NameParam, service: ServiceDep) -> dict[str, Any]:
    """Model metadata: one input tensor per feature column."""
    return model_metadata(_named(service, name), name)


@router.get("/v2/models/{name}/ready", response_model=Status, responses=V2_ERRORS, tags=["v2"])
async def v2_model_ready(name: NameParam, service: ServiceDep) -> dict[str, str]:
    """Model readiness."""
    _named(service, name)
    return {"status": "ready", "model_version": service.version}


@router.post(
    "/v2/models/{name}/infer",
    response_model=V2InferResponse,
    responses={
        **V2_ERRORS,
        200: {"content": {BINARY: {"schema": {"type": "string", "format": "binary"}}}},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {"type": "object"}},
                BINARY: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
    tags=["v2"],
)
async def v2_infer(name: NameParam, request: Request, service: ServiceDep) -> Any:
    """Inference on tensors, one per feature column: JSON, or the binary data extension."""
    _named(service, name)
    length = header_length(request.headers.get(HEADER_LENGTH))
    body = await request.body()
    head = body[:length]  # the JSON part; binary tensor data may follow it
    check_json(head, service.settings.max_decoded_bytes, binary=len(body) - len(head))
    infer, tensors = read_request(body, length, max_rows=service.settings.max_batch_rows)
    names = output_names(service, [o.name for o in infer.outputs or []], tensors)
    binary = wants_binary(infer)
    rows = customer_rows(service, tensors)
    outputs = await score_rows(service, rows)
    columns = output_columns(service, names, rows, outputs)
    if binary:
        body, size = binary_answer(infer, name=name, version=service.version, columns=columns)
        return Response(body, media_type=BINARY, headers={HEADER_LENGTH: str(size)})
    return {
        "model_name": name,
        "model_version": service.version,
        "id": infer.id,
        "outputs": [
            {"name": output, "datatype": "FP64", "shape": [len(rows)], "data": json_data(column)}
            for output, column in columns.items()
        ],
    }


@router.get(
    "/ping", response_model=Status, responses={503: {"model": ErrorMessage}}, tags=["sagemaker"]
)
async def ping(service: ServiceDep) -> dict[str, str]:
    """SageMaker health check (200 once the model is ready)."""
    return {"status": "ready", "model_version": service.version}


#: An MLflow scoring document (``dataframe_split``, ``dataframe_records``, ``instances``,
#: ``inputs``) or a bare array of records, as documented to clients (R1).
MLFLOW_BODY = {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}


@router.post(
    "/invocations",
    response_model=Predictions,
    response_model_exclude_unset=True,  # value and expected_loss only when a row had a value
    responses={
        **{c: {"model": ErrorMessage} for c in (413, 415, 503)},
        422: {"description": "Invalid input"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": MLFLOW_BODY}, CSV: {"schema": {"type": "string"}}},
        }
    },
    tags=["sagemaker"],
)
async def invocations(request: Request, service: ServiceDep) -> dict[str, Any]:
    """SageMaker / MLflow scoring: MLflow JSON formats or CSV; answers ``{"predictions"}``."""
    kind = request.headers.get("content-type", JSON).split(";", 1)[0].strip().lower()
    body = await request.body()
    if kind == CSV:
        table = read_table(body, CSV, max_decoded=service.settings.max_decoded_bytes)
        source = "request body (text/csv)"
        outputs, _, values = await asyncio.to_thread(service.score_table, table, source=source)
        decided = await asyncio.to_thread(decisions_of_table, service, table, source=source)
    elif kind == JSON:
        rows = _mlflow_rows(service, body)
        outputs = await asyncio.to_thread(service.outputs_of_rows, rows)
        values = service.row_values(rows)
        decided = await asyncio.to_thread(decisions_of_rows, service, rows)
    else:
        raise UnsupportedMediaTypeError(kind, accepted=(JSON, CSV))
    return {**output_lists(outputs, values), **decision_lists(decided)}


def _mlflow_rows(service: PredictionService, body: bytes) -> list[dict[str, Any]]:
    check_json(body, service.settings.max_decoded_bytes)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _lenient_json(body)
    records = _records(document)
    service.check_rows(len(records))
    return [_convert(service, r, i) for i, r in enumerate(records)]


def _lenient_json(body: bytes) -> Any:
    """JSON with MLflow's NaN tokens (pandas' missing values) read as null; Infinity refused."""

    def constant(token: str) -> None:
        if token != "NaN":
            raise InvalidInputError(f"{token} is not a valid value", field="body")

    try:
        return json.loads(body, parse_constant=constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"malformed JSON: {exc}", field="body") from None


def _records(document: Any) -> list[Any]:
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise InvalidInputError("expected a JSON object or array", field="body")
    if "dataframe_split" in document:
        split = document["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
            raise InvalidInputError("needs columns and data", field="dataframe_split")
        if not all(isinstance(c, str) for c in split["columns"]):
            raise InvalidInputError("column names must be strings", field="dataframe_split.columns")
        data = split.get("data")
        if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
            raise InvalidInputError("data must be a list of rows", field="dataframe_split")
        return [dict(zip(split["columns"], row, strict=False)) for row in data]
    for key in ("dataframe_records", "instances", "inputs"):
        if key in document:
            value = document[key]
            if not isinstance(value, list):
                raise InvalidInputError("must be a list of records", field=key)
            return value
    raise InvalidInputError(
        "expected dataframe_split, dataframe_records, instances or inputs", field="body"
    )


def _convert(service: PredictionService, record: Any, row: int) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InvalidInputError("not a JSON object", row=row)
    return service.decoder.convert(record, row=row)
