"""Value at risk on every protocol: v2 over HTTP (binary and JSON) and gRPC, and SageMaker's
``/invocations`` (MLflow JSON and CSV), against a live ``churnscale serve``.

A request that carries a value (the ``value`` field: an input tensor, a record key, a CSV
column) gets ``value`` and ``expected_loss`` = ``churn_probability × value`` beside the
probability, exactly as ``POST /v1/predict/batch`` gives them; one without is answered as before.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from live_server import Server, free_port, start_server, stop_server
from test_v2_clients import tensor_columns

pytestmark = pytest.mark.integration

VALUES = [120.0, np.nan, 0.0, 55.5, 8.25, np.nan]


@pytest.fixture(scope="module")
def served(bundle: Path) -> Iterator[tuple[Server, int]]:
    grpc_port = free_port()
    running = start_server(bundle, "--grpc-port", str(grpc_port))
    yield running, grpc_port
    stop_server(running)


@pytest.fixture(scope="module")
def inputs(
    served: tuple[Server, int], customers: list[dict[str, Any]]
) -> tuple[list[tuple[str, str, np.ndarray]], list[dict[str, Any]]]:
    """The tensors of six customers and the same customers as JSON rows with their values."""
    metadata = httpx.get(f"{served[0].url}/v2/models/churn").json()
    columns, sent = tensor_columns(metadata, customers[: len(VALUES)])
    rows = [x if v != v else {**x, "value": v} for x, v in zip(sent, VALUES, strict=True)]
    return columns, rows


def _batch(server: Server, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, expected losses; NaN where a row has no value) by /v1/predict/batch."""
    answer = httpx.post(f"{server.url}/v1/predict/batch", json=rows, timeout=30)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    losses = [p.get("expected_loss", np.nan) for p in predictions]
    return np.array([p["churn_probability"] for p in predictions]), np.array(losses)


def _json_tensor(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    values = array.tolist()
    if datatype == "BYTES":
        values = [v.decode() for v in values]
    data = [None if isinstance(v, float) and v != v else v for v in values]
    return {"name": name, "datatype": datatype, "shape": [len(data)], "data": data}


def test_v2_http_answers_value_and_expected_loss(
    served: tuple[Server, int], inputs: tuple[list[Any], list[dict[str, Any]]]
) -> None:
    import tritonclient.http as triton

    server = served[0]
    columns, rows = inputs
    probabilities, losses = _batch(server, rows)
    value = np.array(VALUES)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    tensors = []
    for name, datatype, array in [*columns, ("value", "FP64", value)]:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)  # binary in, binary out
        tensors.append(tensor)
    result = client.infer("churn", tensors)
    np.testing.assert_array_equal(result.as_numpy("churn_probability"), probabilities)
    np.testing.assert_array_equal(result.as_numpy("value"), value)
    np.testing.assert_array_equal(result.as_numpy("expected_loss"), losses)
    np.testing.assert_array_equal(losses, probabilities * value)  # NaN where no value
    wanted = [triton.InferRequestedOutput("expected_loss")]
    only = client.infer("churn", tensors, outputs=wanted).get_response()["outputs"]
    assert [o["name"] for o in only] == ["expected_loss"]
    plain = client.infer("churn", tensors[:-1]).get_response()["outputs"]  # no value tensor
    assert [o["name"] for o in plain] == ["churn_probability"]
    client.close()
    document = {"inputs": [_json_tensor(*c) for c in [*columns, ("value", "FP64", value)]]}
    answer = httpx.post(f"{server.url}/v2/models/churn/infer", json=document)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs["value"] == [None if v != v else v for v in VALUES]  # JSON has no NaN
    assert outputs["expected_loss"] == [None if v != v else v for v in losses.tolist()]


def test_v2_refuses_value_outputs_without_a_value_and_a_negative_value(
    served: tuple[Server, int], inputs: tuple[list[Any], list[dict[str, Any]]]
) -> None:
    server = served[0]
    columns, _ = inputs
    features = [_json_tensor(*c) for c in columns]
    url = f"{server.url}/v2/models/churn/infer"
    asked = httpx.post(url, json={"inputs": features, "outputs": [{"name": "expected_loss"}]})
    assert asked.status_code == 422
    assert "unknown output; this model answers churn_probability (value and expected_loss with" in (
        asked.text
    )
    negative = np.array([1.0, -2.0, 1.0, 1.0, 1.0, 1.0])
    bad = httpx.post(url, json={"inputs": [*features, _json_tensor("value", "FP64", negative)]})
    assert bad.status_code == 422, bad.text
    assert "value" in bad.text and "row 1" in bad.text


def test_grpc_answers_value_and_expected_loss(
    served: tuple[Server, int], inputs: tuple[list[Any], list[dict[str, Any]]]
) -> None:
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    server, port = served
    columns, rows = inputs
    probabilities, losses = _batch(server, rows)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    tensors = []
    for name, datatype, array in [*columns, ("value", "FP64", np.array(VALUES))]:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    result = client.infer("churn", tensors)
    np.testing.assert_array_equal(result.as_numpy("churn_probability"), probabilities)
    np.testing.assert_array_equal(result.as_numpy("value"), np.array(VALUES))
    np.testing.assert_array_equal(result.as_numpy("expected_loss"), losses)
    wanted = [triton.InferRequestedOutput("expected_loss")]
    only = client.infer("churn", tensors, outputs=wanted)
    np.testing.assert_array_equal(only.as_numpy("expected_loss"), losses)
    assert only.as_numpy("churn_probability") is None
    with pytest.raises(InferenceServerException, match="unknown output") as refused:
        client.infer("churn", tensors[:-1], outputs=wanted)
    assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
    client.close()


def test_invocations_answer_value_and_expected_loss(
    served: tuple[Server, int],
    inputs: tuple[list[Any], list[dict[str, Any]]],
    fresh_table: pa.Table,
) -> None:
    server = served[0]
    _, rows = inputs
    probabilities, losses = _batch(server, rows)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        records = http.post("/invocations", json={"dataframe_records": rows}).json()
        plain = [{k: v for k, v in x.items() if k != "value"} for x in rows]
        without = http.post("/invocations", json={"dataframe_records": plain}).json()
        table = fresh_table.slice(0, 4).append_column("value", pa.array([10.0, None, 0.5, 3.0]))
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        headers = {"content-type": "text/csv"}
        csv = http.post("/invocations", content=sink.getvalue(), headers=headers).json()
    assert records["predictions"] == probabilities.tolist()
    assert records["value"] == [None if v != v else v for v in VALUES]
    assert records["expected_loss"] == [None if v != v else v for v in losses.tolist()]
    assert without == {"predictions": probabilities.tolist()}  # as before: no value, no keys
    assert csv["value"] == [10.0, None, 0.5, 3.0]
    assert csv["expected_loss"][1] is None
    assert csv["expected_loss"][0] == csv["predictions"][0] * 10.0
