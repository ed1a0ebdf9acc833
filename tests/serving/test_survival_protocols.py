"""A survival model's outputs on every route, against a live ``churnscale serve``.

``/v1/predict/batch`` (JSON, Arrow, CSV), v2 over HTTP (JSON tensors and the binary extension)
and gRPC, and SageMaker's ``/invocations`` (MLflow records and CSV) answer the same survival
curve, P(churn within H), restricted mean and expected losses as ``churnscale score`` writes
for the same customers and as ``POST /v1/predict`` answers; a binary model answers as before.
"""

from __future__ import annotations

import io
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

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.model.survival import SurvivalModel
from churnscale.training.local import TrainParams
from churnscale.training.survival import SurvivalJob, run_survival_training

pytestmark = pytest.mark.integration

PARAMS = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)
ROWS = 24
#: Each customer's value (NaN: none), sent as the service's ``value`` field.
VALUES = np.array([np.nan if i % 5 == 2 else 10.0 * i + 0.5 for i in range(ROWS)])
CURVE = ["survival_3", "survival_12", "churn_within_3", "churn_within_12", "restricted_mean_12"]
LOSSES = ["expected_loss_3", "expected_loss_12"]


@pytest.fixture(scope="module")
def survival(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SurvivalModel]:
    """A survival bundle (duration ``tenure_months``, event ``churned``, horizons 3 and 12)."""
    root = tmp_path_factory.mktemp("survival-protocols")
    pq.write_table(generate_table(3_000, 17), root / "train.parquet")
    ingest(str(root / "train.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    job = SurvivalJob(
        root / "ds",
        "tenure_months",
        horizons=(3.0, 12.0),
        distribution="normal",
        sigma=1.0,
        params=PARAMS,
        register=False,
        out=root / "model",
        report=root / "report.html",
    )
    model = run_survival_training(job, Settings(home=root / "home")).model
    assert isinstance(model, SurvivalModel)
    assert list(model.outputs) == ["churn_probability", *CURVE]
    return root / "model", model


@pytest.fixture(scope="module")
def table(survival: tuple[Path, SurvivalModel]) -> pa.Table:
    """Fresh customers as the model takes them (id and features), with a ``value`` column."""
    _, model = survival
    fresh = generate_table(ROWS, 93)
    names = ["customer_id", *model.feature_names]
    return fresh.select(names).append_column("value", pa.array(VALUES, from_pandas=True))


@pytest.fixture(scope="module")
def scored(survival: tuple[Path, SurvivalModel], table: pa.Table, tmp_path_factory: Any) -> Any:
    """What ``churnscale score --value-col value`` writes for ``table``, by column."""
    root = tmp_path_factory.mktemp("survival-score")
    pq.write_table(table, root / "in.parquet")
    command = [sys.executable, "-m", "churnscale", "score", str(root / "in.parquet")]
    command += ["--model", str(survival[0]), "--out", str(root / "out.parquet")]
    subprocess.run([*command, "--value-col", "value"], check=True)
    written = pq.read_table(root / "out.parquet")
    assert written.column("customer_id").to_pylist() == table.column("customer_id").to_pylist()
    return {
        name: written.column(name).to_numpy(zero_copy_only=False) for name in written.schema.names
    }


@pytest.fixture(scope="module")
def served(survival: tuple[Path, SurvivalModel]) -> Iterator[tuple[Server, int]]:
    grpc_port = free_port()
    running = start_server(survival[0], "--grpc-port", str(grpc_port))
    yield running, grpc_port
    stop_server(running)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """The customers as JSON, ``value`` only where they have one."""
    rows = [
        {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()}
        for r in table.to_pylist()
    ]
    return [{k: v for k, v in x.items() if k != "value" or v is not None} for x in rows]


def _close(got: Any, want: np.ndarray, name: str) -> None:
    got = np.array([np.nan if v is None else v for v in got], dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=name)


def _check_curve(columns: dict[str, np.ndarray]) -> None:
    """Survival falls with the horizon, in [0, 1]; churn within H is its complement."""
    s3, s12 = columns["survival_3"], columns["survival_12"]
    assert ((s12 <= s3) & (s12 >= 0) & (s3 <= 1)).all()
    np.testing.assert_allclose(columns["churn_within_12"], 1 - s12, atol=1e-15)
    assert ((columns["restricted_mean_12"] > 0) & (columns["restricted_mean_12"] <= 12)).all()


def test_score_writes_a_monotone_curve_and_losses(scored: dict[str, np.ndarray]) -> None:
    _check_curve(scored)
    for horizon in ("3", "12"):
        want = scored[f"churn_within_{horizon}"] * VALUES
        np.testing.assert_array_equal(scored[f"expected_loss_{horizon}"], want)


def test_predict_and_batch_answer_what_score_writes(
    served: tuple[Server, int], table: pa.Table, scored: dict[str, np.ndarray]
) -> None:
    server = served[0]
    rows = _rows(table)
    features = table.drop_columns(["value"])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        single = [http.post("/v1/predict", json=x).json() for x in rows]
        batch = http.post("/v1/predict/batch", json=rows).json()["predictions"]
        arrow = io.BytesIO()
        with pa.ipc.new_stream(arrow, table.schema) as writer:
            writer.write_table(table)
        headers = {"content-type": "application/vnd.apache.arrow.stream"}
        by_arrow = http.post("/v1/predict/batch", content=arrow.getvalue(), headers=headers)
        csv = io.BytesIO()
        pacsv.write_csv(features, csv)
        headers = {"content-type": "text/csv"}
        by_csv = http.post("/v1/predict/batch", content=csv.getvalue(), headers=headers)
    assert by_arrow.status_code == 200 and by_csv.status_code == 200, by_arrow.text + by_csv.text
    for answers in (single, batch, by_arrow.json()["predictions"]):
        _close([a["churn_probability"] for a in answers], scored["churn_probability"], "p")
        for name in [*CURVE, *LOSSES]:
            _close([a["outputs"].get(name) for a in answers], scored[name], name)
        _close([a.get("expected_loss") for a in answers], scored["expected_loss"], "loss")
    assert batch == [{k: v for k, v in a.items() if k != "model_version"} for a in single]
    plain = by_csv.json()["predictions"]  # no value column: the curve alone
    assert all(set(a) == {"customer_id", "churn_probability", "outputs"} for a in plain)
    for name in CURVE:
        _close([a["outputs"][name] for a in plain], scored[name], name)


def test_v2_http_answers_every_output(
    served: tuple[Server, int], table: pa.Table, scored: dict[str, np.ndarray]
) -> None:
    import tritonclient.http as triton

    server = served[0]
    metadata = httpx.get(f"{server.url}/v2/models/churn").json()
    assert _declared(metadata) == [(name, "FP64", [-1]) for name in ["churn_probability", *CURVE]]
    columns, _ = tensor_columns(metadata, _rows(table))
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    tensors = []
    for name, datatype, array in [*columns, ("value", "FP64", VALUES)]:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)  # binary in, binary out
        tensors.append(tensor)
    result = client.infer("churn", tensors)
    names = [o["name"] for o in result.get_response()["outputs"]]
    assert names == ["churn_probability", *CURVE, "value", "expected_loss", *LOSSES]
    for name in ["churn_probability", *CURVE, "expected_loss", *LOSSES]:
        _close(result.as_numpy(name), scored[name], name)
    _check_curve({name: result.as_numpy(name) for name in CURVE})
    wanted = [triton.InferRequestedOutput("restricted_mean_12")]
    only = client.infer("churn", tensors[:-1], outputs=wanted)
    assert [o["name"] for o in only.get_response()["outputs"]] == ["restricted_mean_12"]
    _close(only.as_numpy("restricted_mean_12"), scored["restricted_mean_12"], "mean")
    client.close()
    document = {"inputs": [_json_tensor(*c) for c in columns]}
    answer = httpx.post(f"{server.url}/v2/models/churn/infer", json=document)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert list(outputs) == ["churn_probability", *CURVE]
    for name in outputs:
        _close(outputs[name], scored[name], name)


def _declared(metadata: dict[str, Any]) -> list[tuple[str, str, list[int]]]:
    return [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]]


def _json_tensor(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    values = array.tolist()
    if datatype == "BYTES":
        values = [v.decode() for v in values]
    data = [None if isinstance(v, float) and v != v else v for v in values]
    return {"name": name, "datatype": datatype, "shape": [len(data)], "data": data}


def test_grpc_answers_every_output(
    served: tuple[Server, int], table: pa.Table, scored: dict[str, np.ndarray]
) -> None:
    import tritonclient.grpc as triton

    server, port = served
    metadata = httpx.get(f"{server.url}/v2/models/churn").json()
    columns, _ = tensor_columns(metadata, _rows(table))
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    grpc_metadata = client.get_model_metadata("churn", as_json=True)
    assert [o["name"] for o in grpc_metadata["outputs"]] == ["churn_probability", *CURVE]
    tensors = []
    for name, datatype, array in [*columns, ("value", "FP64", VALUES)]:
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    result = client.infer("churn", tensors)
    names = [o.name for o in result.get_response().outputs]
    assert names == ["churn_probability", *CURVE, "value", "expected_loss", *LOSSES]
    for name in ["churn_probability", *CURVE, "expected_loss", *LOSSES]:
        _close(result.as_numpy(name), scored[name], name)
    wanted = [triton.InferRequestedOutput("churn_within_3")]
    only = client.infer("churn", tensors[:-1], outputs=wanted)
    _close(only.as_numpy("churn_within_3"), scored["churn_within_3"], "churn_within_3")
    assert only.as_numpy("churn_probability") is None
    client.close()


def test_invocations_answer_every_output(
    served: tuple[Server, int], table: pa.Table, scored: dict[str, np.ndarray]
) -> None:
    server = served[0]
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        records = http.post("/invocations", json={"dataframe_records": _rows(table)}).json()
        headers = {"content-type": "text/csv"}
        csv = http.post("/invocations", content=sink.getvalue(), headers=headers).json()
    for answer in (records, csv):
        assert list(answer) == ["predictions", "outputs", "value", "expected_loss"]
        _close(answer["predictions"], scored["churn_probability"], "p")
        assert list(answer["outputs"]) == [*CURVE, *LOSSES]
        for name in [*CURVE, *LOSSES]:
            _close(answer["outputs"][name], scored[name], name)
        _close(answer["expected_loss"], scored["expected_loss"], "loss")
        _close(answer["value"], VALUES, "value")


def test_a_binary_model_answers_as_before(server: Server, customers: list[dict[str, Any]]) -> None:
    metadata = httpx.get(f"{server.url}/v2/models/churn").json()
    assert _declared(metadata) == [("churn_probability", "FP64", [-1])]
    columns, rows = tensor_columns(metadata, customers[:5])  # rows as the tensors carry them
    with httpx.Client(base_url=server.url, timeout=30) as http:
        batch = http.post("/v1/predict/batch", json=rows).json()["predictions"]
        records = http.post("/invocations", json={"dataframe_records": rows}).json()
        document = {"inputs": [_json_tensor(*c) for c in columns]}
        v2 = http.post("/v2/models/churn/infer", json=document).json()
    assert all(set(a) == {"customer_id", "churn_probability"} for a in batch)
    assert records == {"predictions": [a["churn_probability"] for a in batch]}
    assert [o["name"] for o in v2["outputs"]] == ["churn_probability"]
    _close(v2["outputs"][0]["data"], np.array(records["predictions"]), "p")
