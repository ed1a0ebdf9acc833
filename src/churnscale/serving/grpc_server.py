"""The Open Inference Protocol v2 over gRPC: ``inference.GRPCInferenceService``.

``churnscale serve --grpc-port 8001`` answers ServerLive, ServerReady, ServerMetadata,
ModelReady, ModelMetadata and ModelInfer on that port, beside HTTP, in the same process and
event loop, from the same :class:`~churnscale.serving.gateway.ServiceState` (so a reload swaps
both) and under the same guards: the predict API keys (``authorization: Bearer <key>`` or
``x-api-key`` metadata; liveness and readiness are open), admission control and the request
deadline for ModelInfer. Other RPCs answer UNIMPLEMENTED. Input tensors come as typed
``contents`` or as ``raw_input_contents`` (what tritonclient sends), read by
:mod:`~churnscale.serving.v2_tensors` exactly as the HTTP routes read them; each output (the
probabilities, a survival model's curve; ``value`` and the expected losses when the request
carries the value field's tensor) goes back as one FP64 ``raw_output_contents``. Calls are
counted in the service's metrics under their gRPC method path, with the HTTP status their
outcome maps to.

The messages are the ones tritonclient ships compiled (``tritonclient.grpc.service_pb2``):
install the ``grpc`` extra (``pip install 'churnscale[grpc]'``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import numpy as np
import orjson

from churnscale.exceptions import (
    ConfigError,
    DeadlineExceededError,
    ModelNotFoundError,
)
from churnscale.serving.errors import ErrorAnswer, InvalidInputError, RequestError, error_answer
from churnscale.serving.gateway import Gateway
from churnscale.serving.security import AccessRole, key_in_headers
from churnscale.serving.service import PredictionService
from churnscale.serving.v2_tensors import (
    Tensor,
    customer_rows,
    declared_rows,
    from_array,
    from_elements,
    from_raw,
    model_metadata,
    output_columns,
    output_names,
    score_rows,
)
from churnscale.version import __version__

SERVICE = "inference.GRPCInferenceService"
#: The gRPC status of each HTTP status the service answers with.
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
#: The ``InferTensorContents`` field that holds each datatype.
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def messages() -> tuple[Any, Any]:
    """tritonclient's compiled ``service_pb2`` (and ``service_pb2_grpc``), or one line saying
    which extra to install."""
    try:
        from tritonclient.grpc import service_pb2, service_pb2_grpc
    except ImportError as exc:
        raise ConfigError(
            "--grpc-port",
            expected="the grpc extra installed (pip install 'churnscale[grpc]')",
            received=f"no module {exc.name}",
        ) from None
    return service_pb2, service_pb2_grpc


class InferenceServicer:
    """The RPCs, each answered from the gateway's state under its guards."""

    def __init__(self, gateway: Gateway, pb2: Any) -> None:
        self.state = gateway.state
        self.guards = gateway.guards
        self.pb2 = pb2

    def handlers(self) -> grpc.GenericRpcHandler:
        """The generic handler of every implemented RPC (the rest are UNIMPLEMENTED)."""
        pb2 = self.pb2
        methods = {
            "ServerLive": (self.server_live, pb2.ServerLiveRequest, None),
            "ServerReady": (self.server_ready, pb2.ServerReadyRequest, None),
            "ServerMetadata": (self.server_metadata, pb2.ServerMetadataRequest, AccessRole.PREDICT),
            "ModelReady": (self.model_ready, pb2.ModelReadyRequest, AccessRole.PREDICT),
            "ModelMetadata": (self.model_metadata, pb2.ModelMetadataRequest, AccessRole.PREDICT),
            "ModelInfer": (self.model_infer, pb2.ModelInferRequest, AccessRole.PREDICT),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    self._guarded(f"/{SERVICE}/{name}", method, role),
                    request_deserializer=kind.FromString,
                    response_serializer=lambda message: message.SerializeToString(),
                )
                for name, (method, kind, role) in methods.items()
            },
        )

    def _guarded(
        self, route: str, method: Callable[[Any], Awaitable[Any]], role: AccessRole | None
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                if role is not None:
                    self._authorize(context)
                if route.endswith("/ModelInfer"):
                    guards = self.guards
                    async with asyncio.timeout(guards.timeout), guards.admission.admit():
                        answer = await method(request)
                else:
                    answer = await method(request)
            except TimeoutError:
                error: Exception = DeadlineExceededError(self.guards.timeout)
            except Exception as exc:
                error = exc
            else:
                self.state.metrics.observe(route, 200, time.perf_counter() - started)
                return answer
            failed, code, message = failure(error)
            self.state.metrics.errors.labels(route, failed.kind).inc()
            self.state.metrics.observe(route, failed.status, time.perf_counter() - started)
            if failed.headers:  # Retry-After of a refusal, as trailing metadata
                context.set_trailing_metadata(
                    tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in failed.headers)
                )
            await context.abort(code, message)

        return call

    def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        keys = self.guards.keys
        if not keys.predict:
            return
        metadata = context.invocation_metadata() or ()
        headers = [(k.lower().encode("latin-1"), _raw(v)) for k, v in metadata]
        decision = keys.check(key_in_headers(headers), AccessRole.PREDICT)
        if not decision.allowed:
            raise _Refused(decision.status, decision.detail)

    def _named(self, name: str, version: str = "") -> PredictionService:
        service = self.state.ready()
        if name != service.settings.model_name:
            raise ModelNotFoundError(name, f"this server serves {service.settings.model_name!r}")
        if version and version != service.version:
            raise ModelNotFoundError(f"{name}/{version}", f"this server serves {service.version}")
        return service

    async def server_live(self, request: Any) -> Any:
        return self.pb2.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any) -> Any:
        return self.pb2.ServerReadyResponse(ready=self.state.deployment is not None)

    async def server_metadata(self, request: Any) -> Any:
        return self.pb2.ServerMetadataResponse(
            name="churnscale", version=__version__, extensions=["binary_tensor_data"]
        )

    async def model_ready(self, request: Any) -> Any:
        try:
            self._named(request.name, request.version)
        except (ModelNotFoundError, RequestError):
            return self.pb2.ModelReadyResponse(ready=False)
        return self.pb2.ModelReadyResponse(ready=True)

    async def model_metadata(self, request: Any) -> Any:
        service = self._named(request.name, request.version)
        document = model_metadata(service, request.name)
        tensor = self.pb2.ModelMetadataResponse.TensorMetadata
        return self.pb2.ModelMetadataResponse(
            name=document["name"],
            versions=document["versions"],
            platform=document["platform"],
            inputs=[tensor(**t) for t in document["inputs"]],
            outputs=[tensor(**t) for t in document["outputs"]],
        )

    async def model_infer(self, request: Any) -> Any:
        service = self._named(request.model_name, request.model_version)
        tensors = request_tensors(request, max_rows=service.settings.max_batch_rows)
        names = output_names(service, [o.name for o in request.outputs], tensors)
        rows = customer_rows(service, tensors)
        outputs = await score_rows(service, rows)
        columns = output_columns(service, names, rows, outputs)
        answer = self.pb2.ModelInferResponse(
            model_name=request.model_name, model_version=service.version, id=request.id
        )
        for name, column in columns.items():
            # the values travel in raw_output_contents, as tritonclient reads them
            answer.outputs.add(name=name, datatype="FP64", shape=[len(column)])
            answer.raw_output_contents.append(np.ascontiguousarray(column, "<f8").tobytes())
        return answer


class _Refused(RequestError):
    """A call without a valid key (401/403)."""

    kind = "auth"

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.http_status = status


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def failure(error: BaseException) -> tuple[ErrorAnswer, grpc.StatusCode, str]:
    """How a failed call is answered: the service's one error answer (:func:`error_answer`,
    which logs bugs and hides their detail), its gRPC status code and message."""
    answer = error_answer(error, style="v2")
    message = str(orjson.loads(answer.body)["error"])
    return answer, CODES.get(answer.status, grpc.StatusCode.INTERNAL), message


def request_tensors(request: Any, *, max_rows: int) -> list[Tensor]:
    """The input columns of a ModelInferRequest (raw contents, or typed contents); a tensor
    declaring more than ``max_rows`` rows is refused before it is decoded."""
    raw: Sequence[bytes] = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInputError(
            f"raw_input_contents holds {len(raw)} tensors for {len(request.inputs)} inputs",
            field="raw_input_contents",
        )
    tensors = []
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        if raw:
            tensors.append(from_raw(tensor.name, tensor.datatype, shape, raw[i], max_rows=max_rows))
            continue
        declared_rows(tensor.name, shape, max_rows)
        if tensor.datatype == "BYTES":
            tensors.append(from_elements(tensor.name, shape, tensor.contents.bytes_contents))
        elif tensor.datatype in CONTENTS:
            values = getattr(tensor.contents, CONTENTS[tensor.datatype])
            tensors.append(from_array(tensor.name, shape, np.asarray(values)))
        else:
            expected = ", ".join([*CONTENTS, "BYTES"])
            raise InvalidInputError(
                f"datatype {tensor.datatype!r} is not one of {expected}", field=tensor.name
            )
    return tensors


async def start_grpc(gateway: Gateway, *, host: str, port: int, max_bytes: int) -> grpc.aio.Server:
    """A started gRPC server for ``gateway`` on ``host:port`` (in the running event loop)."""
    pb2, _ = messages()
    limit = max_bytes + 65_536  # the message, beside the body limit HTTP applies
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]
    )
    server.add_generic_rpc_handlers((InferenceServicer(gateway, pb2).handlers(),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(
            "--grpc-port", expected="a free port", received=f"{address} ({exc})"
        ) from None
    if bound == 0:
        raise ConfigError("--grpc-port", expected="a free port", received=address)
    await server.start()
    return server
