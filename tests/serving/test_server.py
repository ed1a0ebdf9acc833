"""A real ``churnscale serve`` process on 127.0.0.1, driven over HTTP by real clients."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from live_server import Server, start_server, stop_server

from churnscale.model.lightgbm import LightGBMModel

pytestmark = pytest.mark.integration


def test_rest_endpoints_over_http(
    server: Server, model: LightGBMModel, fresh_table: pa.Table, customers: list[dict[str, Any]]
) -> None:
    expected = model.predict_proba(fresh_table)
    with httpx.Client(base_url=server.url) as client:
        one = client.post("/v1/predict", json=customers[0])
        assert one.status_code == 200
        assert one.headers["x-model-version"] == one.json()["model_version"]
        assert one.json()["churn_probability"] == pytest.approx(expected[0], abs=1e-6)
        batch = client.post("/v1/predict/batch", json=customers)
        got = [p["churn_probability"] for p in batch.json()["predictions"]]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        for path in ("/healthz", "/readyz", "/v1/models", "/metrics", "/docs", "/openapi.json"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["x-model-version"].startswith("sha256:")
        assert "churnscale_requests_total" in client.get("/metrics").text
        bad = client.post("/v1/predict", json={**customers[0], "tenure_months": "x"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "tenure_months"]


def test_open_inference_protocol_v2_with_tritonclient(
    server: Server, model: LightGBMModel, fresh_table: pa.Table, customers: list[dict[str, Any]]
) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException, triton_to_np_dtype

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn")
    metadata = client.get_model_metadata("churn")
    assert [i["name"] for i in metadata["inputs"]] == model.feature_names
    complete = [i for i, x in enumerate(customers) if None not in x.values()][:20]
    inputs = []
    for spec in metadata["inputs"]:  # tensors cannot carry nulls: rows with every value
        values = [customers[i][spec["name"]] for i in complete]
        array = np.array(values, dtype=triton_to_np_dtype(spec["datatype"]))
        tensor = triton.InferInput(spec["name"], [len(values)], spec["datatype"])
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    output = triton.InferRequestedOutput("churn_probability", binary_data=False)
    result = client.infer("churn", inputs, outputs=[output])
    got = result.as_numpy("churn_probability")
    expected = model.predict_proba(fresh_table)[complete]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    with pytest.raises(InferenceServerException, match="this server serves 'churn'"):
        client.get_model_metadata("other")
    with pytest.raises(InferenceServerException, match="missing required field"):
        client.infer("churn", inputs[1:], outputs=[output])
    client.close()


# Importing MLflow's scoring client warns about its own type hints (mlflow 3.17), not ours.
@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")
def test_mlflow_scoring_client_and_sagemaker(
    server: Server, model: LightGBMModel, fresh_table: pa.Table, customers: list[dict[str, Any]]
) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = ScoringServerClient("127.0.0.1", server.port)
    client.wait_server_ready(timeout=10)
    frame = pd.DataFrame(customers[:25]).drop(columns=["customer_id"])
    answer = client.invoke(frame)
    expected = model.predict_proba(fresh_table)[:25]
    np.testing.assert_allclose(answer.get_predictions().to_numpy().ravel(), expected, atol=1e-6)
    with httpx.Client(base_url=server.url) as http:
        records = http.post("/invocations", json={"dataframe_records": customers[:25]})
        np.testing.assert_allclose(records.json()["predictions"], expected, rtol=0, atol=1e-6)
        csv = fresh_table.slice(0, 25).to_pandas().to_csv(index=False).encode()
        sagemaker = http.post("/invocations", content=csv, headers={"content-type": "text/csv"})
        np.testing.assert_allclose(sagemaker.json()["predictions"], expected, rtol=0, atol=1e-6)
        assert http.get("/ping").status_code == 200
        wrong = http.post("/invocations", json={"dataframe_split": {"columns": "x"}})
        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["loc"] == ["body", "dataframe_split"]


def test_two_workers_share_the_port(bundle: Path, customers: list[dict[str, Any]]) -> None:
    running = start_server(bundle, "--workers", "2")
    try:
        with httpx.Client(base_url=running.url) as client:
            answers = [client.post("/v1/predict", json=customers[i]) for i in range(10)]
        assert {a.status_code for a in answers} == {200}
    finally:
        stop_server(running)
    assert running.process.returncode is not None


def test_serve_refuses_a_bad_model_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CHURNSCALE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", "serve", "--model", "churn@champion"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "churn@champion" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    bad_setting = subprocess.run(
        [sys.executable, "-m", "churnscale", "serve", "--model", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHURNSCALE_MAX_BATCH_ROWS": "0"},
    )
    assert bad_setting.returncode == 2
    assert "CHURNSCALE_MAX_BATCH_ROWS: expected Input should be greater than" in bad_setting.stderr
