"""An uplift model's uplift and action on every route, against a live ``churnscale serve``.

``POST /v1/predict`` answers ``uplift``, ``p_treated`` and the deploy-time policy's ``action``;
``/v1/predict/batch`` (JSON and CSV), v2 over HTTP (JSON and binary tensors) and gRPC, and
SageMaker's ``/invocations`` (MLflow JSON and CSV) answer the same numbers, and so does
``churnscale score`` under the same policy.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from live_server import Server, free_port, start_server, stop_server
from test_v2_clients import tensor_columns

from churnscale.training.uplift import UpliftSpec, train_uplift
from churnscale.training.uplift_fit import UpliftParams

pytestmark = pytest.mark.integration

#: The deploy-time policy: treat the top 40% by uplift when worth the action's cost.
POLICY = {"CHURNSCALE_UPLIFT_BUDGET": "0.4", "CHURNSCALE_UPLIFT_ACTION_COST": "0.005"}
ROWS = 40


@pytest.fixture(scope="module")
def uplift_model(uplift_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    params = UpliftParams(rounds=30, learning_rate=0.1, min_data_in_leaf=40)
    spec = UpliftSpec("offer", "offer", "no_offer", learner="x", params=params)
    return train_uplift(uplift_dataset, spec).model.save(tmp_path_factory.mktemp("ux") / "m")


@pytest.fixture(scope="module")
def served(uplift_model: Path) -> Iterator[tuple[Server, int]]:
    grpc_port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in POLICY.items():
            patch.setenv(name, value)
        running = start_server(uplift_model, "--grpc-port", str(grpc_port))
    yield running, grpc_port
    stop_server(running)


@pytest.fixture(scope="module")
def single(
    served: tuple[Server, int], customers: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The customers as the tensors carry them, and /v1/predict's answer for each."""
    server = served[0]
    metadata = httpx.get(f"{server.url}/v2/models/churn").json()
    _, sent = tensor_columns(metadata, customers[:ROWS])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answers = [http.post("/v1/predict", json=x).json() for x in sent]
    expected = {
        name: np.array([a[name] for a in answers])
        for name in ("churn_probability", "uplift", "p_treated")
    }
    expected["action"] = np.array([a["action"] for a in answers])
    assert {"treat", "control"} == set(expected["action"].tolist())  # the policy splits them
    return sent, expected


def _check(got: dict[str, Any], expected: dict[str, np.ndarray]) -> None:
    for name in ("uplift", "p_treated"):
        np.testing.assert_array_equal(np.asarray(got[name], dtype=np.float64), expected[name])
    np.testing.assert_array_equal(np.asarray(got["action"]), expected["action"])


def _treat(actions: np.ndarray) -> np.ndarray:
    return (actions == "treat").astype(np.float64)


def test_batch_answers_uplift_and_action_as_predict(
    served: tuple[Server, int],
    single: tuple[list[dict[str, Any]], dict[str, np.ndarray]],
    fresh_table: pa.Table,
) -> None:
    server = served[0]
    sent, expected = single
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v1/predict/batch", json=sent)
        sink = io.BytesIO()
        pacsv.write_csv(fresh_table.slice(0, ROWS), sink)
        csv = http.post(
            "/v1/predict/batch", content=sink.getvalue(), headers={"content-type": "text/csv"}
        )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    _check({k: [r[k] for r in rows] for k in ("uplift", "p_treated", "action")}, expected)
    assert [r["churn_probability"] for r in rows] == expected["churn_probability"].tolist()
    assert csv.status_code == 200, csv.text
    by_csv = csv.json()["predictions"]
    np.testing.assert_allclose([r["uplift"] for r in by_csv], expected["uplift"], atol=1e-12)
    assert [r["action"] for r in by_csv] == expected["action"].tolist()


def test_v2_http_json_and_binary_answer_uplift_and_action(
    served: tuple[Server, int],
    single: tuple[list[dict[str, Any]], dict[str, np.ndarray]],
    customers: list[dict[str, Any]],
) -> None:
    import tritonclient.http as triton

    server = served[0]
    _, expected = single
    metadata = httpx.get(f"{server.url}/v2/models/churn").json()
    names = [o["name"] for o in metadata["outputs"]]
    assert names == ["churn_probability", "uplift", "p_treated", "action"]
    columns, _ = tensor_columns(metadata, customers[:ROWS])
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    tensors = []
    for name, datatype, array in columns:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)  # binary in, binary out
        tensors.append(tensor)
    result = client.infer("churn", tensors)
    got = {name: result.as_numpy(name) for name in ("uplift", "p_treated")}
    got["action"] = np.where(result.as_numpy("action") == 1.0, "treat", "control")
    _check(got, expected)
    np.testing.assert_array_equal(result.as_numpy("action"), _treat(expected["action"]))
    wanted = [triton.InferRequestedOutput("uplift", binary_data=False)]
    only = client.infer("churn", tensors, outputs=wanted).get_response()["outputs"]
    assert [o["name"] for o in only] == ["uplift"]
    assert only[0]["data"] == expected["uplift"].tolist()  # JSON out
    client.close()


def test_grpc_answers_uplift_and_action(
    served: tuple[Server, int],
    single: tuple[list[dict[str, Any]], dict[str, np.ndarray]],
    customers: list[dict[str, Any]],
) -> None:
    import tritonclient.grpc as triton

    server, port = served
    _, expected = single
    metadata = httpx.get(f"{server.url}/v2/models/churn").json()
    columns, _ = tensor_columns(metadata, customers[:ROWS])
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    tensors = []
    for name, datatype, array in columns:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    result = client.infer("churn", tensors)
    np.testing.assert_array_equal(result.as_numpy("uplift"), expected["uplift"])
    np.testing.assert_array_equal(result.as_numpy("p_treated"), expected["p_treated"])
    np.testing.assert_array_equal(result.as_numpy("action"), _treat(expected["action"]))
    client.close()


def test_invocations_answer_uplift_and_action(
    served: tuple[Server, int],
    single: tuple[list[dict[str, Any]], dict[str, np.ndarray]],
    fresh_table: pa.Table,
) -> None:
    server = served[0]
    sent, expected = single
    with httpx.Client(base_url=server.url, timeout=30) as http:
        records = http.post("/invocations", json={"dataframe_records": sent}).json()
        sink = io.BytesIO()
        pacsv.write_csv(fresh_table.slice(0, ROWS), sink)
        headers = {"content-type": "text/csv"}
        csv = http.post("/invocations", content=sink.getvalue(), headers=headers).json()
    assert records["predictions"] == expected["churn_probability"].tolist()
    _check(records, expected)
    np.testing.assert_allclose(csv["uplift"], expected["uplift"], atol=1e-12)
    assert csv["action"] == expected["action"].tolist()


def test_churnscale_score_gives_the_same_uplift_and_action(
    uplift_model: Path,
    single: tuple[list[dict[str, Any]], dict[str, np.ndarray]],
    fresh_table: pa.Table,
    tmp_path: Path,
) -> None:
    _, expected = single
    pq.write_table(fresh_table.slice(0, ROWS), tmp_path / "c.parquet")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "churnscale", "score", str(tmp_path / "c.parquet")),
            *("--model", str(uplift_model), "--out", str(tmp_path / "s.parquet")),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **POLICY, "CHURNSCALE_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 0, done.stderr
    scored = pq.read_table(tmp_path / "s.parquet")
    np.testing.assert_allclose(scored.column("uplift").to_numpy(), expected["uplift"], atol=1e-12)
    assert scored.column("action").to_pylist() == expected["action"].tolist()
