"""Open Inference Protocol v2 as real clients speak it, against a live ``churnscale serve``.

tritonclient.http with its defaults (binary tensors in, binary probabilities out) and with
JSON tensors holding ``NaN``, and tritonclient.grpc on ``--grpc-port``; rows with missing values
(NaN numerics, empty BYTES elements) and columns sent as FP64, FP32, INT64, BOOL and BYTES.
Every answer must equal what ``POST /v1/predict/batch`` gives for the same customers. The server
requires a predict key, so every call also shows that both transports check it.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import Server, free_port, start_server, stop_server

pytestmark = pytest.mark.integration

#: Columns sent in another datatype than the metadata's FP64 (integers, or float32).
AS_INT64 = {"tenure_months", "sessions_30d"}
AS_FP32 = {"monthly_charges"}
KEY = "v2-clients-predict-key-0123"
AUTH = {"authorization": f"Bearer {KEY}"}


def auth() -> dict[str, str]:
    """A fresh headers dict for tritonclient, which adds its own headers to the one it gets."""
    return dict(AUTH)


@pytest.fixture(scope="module")
def served(bundle: Path) -> Iterator[tuple[Server, int]]:
    """A server with a predict key, serving gRPC too: (server, gRPC port)."""
    grpc_port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURNSCALE_API_KEYS", KEY)
        running = start_server(bundle, "--grpc-port", str(grpc_port))
    yield running, grpc_port
    stop_server(running)


@pytest.fixture(scope="module")
def server(served: tuple[Server, int]) -> Server:
    return served[0]


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def tensor_columns(
    metadata: dict[str, Any], rows: list[dict[str, Any]]
) -> tuple[list[tuple[str, str, np.ndarray]], list[dict[str, Any]]]:
    """(name, datatype, array) per input, and the customers exactly as the tensors carry them."""
    columns = []
    sent: list[dict[str, Any]] = [{} for _ in rows]
    for spec in metadata["inputs"]:
        name, values = spec["name"], [r[spec["name"]] for r in rows]
        datatype = spec["datatype"]
        if datatype == "FP64" and name in AS_INT64:
            datatype, array = "INT64", np.array(values, dtype=np.int64)
        elif datatype == "FP64":
            kind = np.float32 if name in AS_FP32 else np.float64
            datatype = "FP32" if name in AS_FP32 else "FP64"
            array = np.array([np.nan if v is None else v for v in values], dtype=kind)
        elif datatype == "BOOL":
            array = np.array(values, dtype=bool)
        else:
            texts = [_text(v) for v in values]
            array = np.array([b"" if t is None else str(t).encode() for t in texts], dtype=object)
        for x, value in zip(sent, array.tolist(), strict=True):
            x[name] = _decoded(value)
        columns.append((name, datatype, array))
    return columns, sent


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode() or None
    if isinstance(value, float) and value != value:
        return None
    return value


def expected(server: Server, sent: list[dict[str, Any]]) -> np.ndarray:
    answer = httpx.post(f"{server.url}/v1/predict/batch", json=sent, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    return np.array([p["churn_probability"] for p in answer.json()["predictions"]])


@pytest.fixture(scope="module")
def rows(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chosen = customers[:60]
    missing = [k for x in chosen for k, v in x.items() if v is None]
    assert {"satisfaction_score", "age_band"} <= set(missing)  # NaN and empty-BYTES rows
    return chosen


def test_tritonclient_http_defaults_binary_tensors(
    server: Server, rows: list[dict[str, Any]]
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    metadata = client.get_model_metadata("churn", headers=auth())
    columns, sent = tensor_columns(metadata, rows)
    inputs = []
    for name, datatype, array in columns:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)  # binary_data=True: the default
        inputs.append(tensor)
    result = client.infer("churn", inputs, request_id="batch-1", headers=auth())  # binary answer
    got = result.as_numpy("churn_probability")
    assert got.dtype == np.float64 and got.shape == (len(rows),)
    assert result.get_response()["id"] == "batch-1"
    assert result.get_output("churn_probability")["parameters"]["binary_data_size"] == 8 * len(rows)
    np.testing.assert_array_equal(got, expected(server, sent))
    assert "binary_tensor_data" in client.get_server_metadata(headers=auth())["extensions"]
    client.close()


def test_tritonclient_http_json_tensors_with_nan(
    server: Server, rows: list[dict[str, Any]]
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    columns, sent = tensor_columns(client.get_model_metadata("churn", headers=auth()), rows)
    inputs = []
    for name, datatype, array in columns:
        tensor = triton.InferInput(name, [len(array), 1], datatype)
        tensor.set_data_from_numpy(array.reshape(-1, 1), binary_data=False)  # NaN as a JSON token
        inputs.append(tensor)
    output = triton.InferRequestedOutput("churn_probability", binary_data=False)
    result = client.infer("churn", inputs, outputs=[output], headers=auth())
    np.testing.assert_array_equal(result.as_numpy("churn_probability"), expected(server, sent))
    client.close()


def _binary_body(document: dict[str, Any], raw: bytes) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(document).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def test_bad_binary_requests_are_refused_naming_the_problem(
    server: Server, rows: list[dict[str, Any]]
) -> None:
    url = f"{server.url}/v2/models/churn/infer"
    one = {"name": "tenure_months", "shape": [2], "datatype": "FP64"}
    cases = {
        "binary_data_size 16 runs past": ({**one, "parameters": {"binary_data_size": 16}}, b"x"),
        "not a whole number of FP64": ({**one, "parameters": {"binary_data_size": 3}}, b"abc"),
        "neither data nor a binary_data_size": (one, b""),
        "bytes after the last binary input": ({**one, "data": [1.0, 2.0]}, b"extra"),
        "ends inside a length prefix": (
            {**one, "datatype": "BYTES", "parameters": {"binary_data_size": 2}},
            b"\x01\x00",
        ),
        "is not one of": (
            {**one, "datatype": "FP8", "parameters": {"binary_data_size": 2}},
            b"\x01\x00",
        ),
    }
    cases["holds more than the 1 elements its shape declares"] = (
        {**one, "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 8}},
        b"\x00" * 8,  # two empty elements
    )
    too_many = {**one, "shape": [10_001], "parameters": {"binary_data_size": 8 * 10_001}}
    cases["tensor of 10001 rows is over the limit of 10000"] = (too_many, b"\x00" * 80_008)
    for message, (tensor, raw) in cases.items():
        body, headers = _binary_body({"inputs": [tensor]}, raw)
        answer = httpx.post(url, content=body, headers={**headers, **AUTH})
        status = 413 if "over the limit" in message else 422
        assert answer.status_code == status, (message, answer.text)
        assert message in answer.json()["error"], answer.text
    answer = httpx.post(
        url, content=b"{}", headers={"Inference-Header-Content-Length": "9", **AUTH}
    )
    assert answer.status_code == 422
    assert "longer than the 2-byte body" in answer.json()["error"]
    infinity = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [Infinity]}]}'
    answer = httpx.post(url, content=infinity, headers=AUTH)
    assert answer.status_code == 422 and "Infinity is not a valid value" in answer.json()["error"]


def test_tritonclient_grpc(served: tuple[Server, int], rows: list[dict[str, Any]]) -> None:
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    server, port = served
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    assert client.is_server_live() and client.is_server_ready()  # health: no key needed
    assert client.is_model_ready("churn", headers=auth())
    assert not client.is_model_ready("other", headers=auth())
    metadata = client.get_model_metadata("churn", headers=auth(), as_json=True)
    http_metadata = httpx.get(f"{server.url}/v2/models/churn", headers=AUTH).json()
    assert [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]] == [
        (i["name"], i["datatype"], ["-1"])
        for i in http_metadata["inputs"]  # int64 as text
    ]
    assert metadata["versions"] == http_metadata["versions"]
    columns, sent = tensor_columns(http_metadata, rows)
    inputs = []
    for name, datatype, array in columns:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)  # raw_input_contents
        inputs.append(tensor)
    result = client.infer("churn", inputs, request_id="g-1", headers=auth())
    np.testing.assert_array_equal(result.as_numpy("churn_probability"), expected(server, sent))
    assert result.get_response().id == "g-1"
    with pytest.raises(InferenceServerException, match="missing API key") as refused:
        client.infer("churn", inputs)
    assert refused.value.status() == "StatusCode.UNAUTHENTICATED"
    with pytest.raises(InferenceServerException, match="missing required field") as bad:
        client.infer("churn", inputs[1:], headers=auth())
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="this server serves 'churn'") as other:
        client.infer("other", inputs, headers=auth())
    assert other.value.status() == "StatusCode.NOT_FOUND"
    client.close()
    scraped = httpx.get(f"{server.url}/metrics", headers=AUTH).text
    assert 'route="/inference.GRPCInferenceService/ModelInfer",status="200"' in scraped
    assert 'kind="auth",route="/inference.GRPCInferenceService/ModelInfer"' in scraped


def test_grpc_typed_contents(served: tuple[Server, int], rows: list[dict[str, Any]]) -> None:
    """Tensors in InferTensorContents' typed fields (what other clients send) score alike."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    server, port = served
    metadata = httpx.get(f"{server.url}/v2/models/churn", headers=AUTH).json()
    columns, sent = tensor_columns(metadata, rows)
    fields = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT64": "int64_contents"}
    request = service_pb2.ModelInferRequest(model_name="churn")
    for name, datatype, array in columns:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(array)])
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend(array.tolist())
        elif datatype == "BOOL":
            tensor.contents.bool_contents.extend(array.tolist())
        else:
            getattr(tensor.contents, fields[datatype]).extend(array.tolist())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.ModelInfer(request, metadata=[("x-api-key", KEY)])
        with pytest.raises(grpc.RpcError) as unknown:
            stub.ModelConfig(service_pb2.ModelConfigRequest(name="churn"))
        huge = service_pb2.ModelInferRequest(model_name="churn")
        huge.inputs.add(name="tenure_months", datatype="FP64", shape=[20_000])
        huge.raw_input_contents.append(b"\x00" * 8 * 20_000)
        with pytest.raises(grpc.RpcError) as too_large:
            stub.ModelInfer(huge, metadata=[("x-api-key", KEY)])
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert too_large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "tensor of 20000 rows is over the limit of 10000" in str(too_large.value.details())
    got = np.frombuffer(answer.raw_output_contents[0], dtype="<f8")
    assert [o.name for o in answer.outputs] == ["churn_probability"]
    np.testing.assert_array_equal(got, expected(server, sent))


def test_grpc_port_without_the_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from churnscale.extras import MissingExtraError, require

    monkeypatch.setitem(sys.modules, "grpc", None)  # as if not installed
    message = r"serve --grpc-port needs .*'grpc'.*: pip install 'churnscale\[grpc\]'"
    with pytest.raises(MissingExtraError, match=message):
        require("grpc", feature="serve --grpc-port")


def test_grpc_failures_map_to_status_codes_without_leaking_bugs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import grpc

    from churnscale.exceptions import DeadlineExceededError, OverloadedError
    from churnscale.serving.errors import PayloadTooLargeError
    from churnscale.serving.grpc_server import failure

    bug, code, message = failure(RuntimeError("secret path /etc/x"))
    assert (bug.status, bug.kind, code, message) == (
        500,
        "server",
        grpc.StatusCode.INTERNAL,
        "internal server error",
    )
    assert "secret path" in caplog.text  # logged with its traceback, never sent
    assert failure(DeadlineExceededError(2.0))[1] == grpc.StatusCode.DEADLINE_EXCEEDED
    refused, code, _ = failure(OverloadedError(in_flight=1, queued=0, retry_after=3))
    assert code == grpc.StatusCode.UNAVAILABLE and refused.headers == [(b"retry-after", b"3")]
    big, code, message = failure(PayloadTooLargeError("big", field="x"))
    assert (big.kind, code, message) == ("too_large", grpc.StatusCode.RESOURCE_EXHAUSTED, "big")
