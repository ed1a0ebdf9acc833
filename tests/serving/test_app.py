"""The service in process (TestClient): results, bad input, limits, health, metrics."""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from churnscale.config import Settings
from churnscale.exceptions import ConfigError, ModelNotFoundError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import load_model
from churnscale.model.predictor import Predictor
from churnscale.serving.app import create_app

ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def client(bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model=str(bundle)))) as c:
        yield c


@pytest.fixture(scope="module")
def strict(bundle: Path) -> Iterator[TestClient]:
    settings = Settings(model=str(bundle), max_body_bytes=4_096, max_batch_rows=5, reasons=True)
    with TestClient(create_app(settings)) as c:
        yield c


def csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_every_path_equals_the_model(
    client: TestClient, model: LightGBMModel, fresh_table: pa.Table, customers: list[dict[str, Any]]
) -> None:
    expected = model.predict_proba(fresh_table)
    one = [client.post("/v1/predict", json=x).json()["churn_probability"] for x in customers[:60]]
    np.testing.assert_allclose(one, expected[:60], rtol=0, atol=1e-6)
    bodies = [
        ("application/json", None, customers),
        ("text/csv", csv_bytes(fresh_table), None),
        (ARROW, arrow_bytes(fresh_table), None),
    ]
    for kind, content, payload in bodies:
        answer = client.post(
            "/v1/predict/batch", content=content, json=payload, headers={"content-type": kind}
        )
        assert answer.status_code == 200, answer.text
        got = [p["churn_probability"] for p in answer.json()["predictions"]]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        ids = [p["customer_id"] for p in answer.json()["predictions"]]
        assert ids == fresh_table.column("customer_id").to_pylist()


@pytest.mark.parametrize("kind", ["compiled", "lightgbm"])
def test_predictors_agree_with_lightgbm(
    model: LightGBMModel, fresh_table: pa.Table, kind: Any
) -> None:
    predictor = Predictor(model, kind=kind)
    matrix = model.preprocessor.transform(fresh_table)
    expected = model.predict_proba(fresh_table)
    np.testing.assert_allclose(predictor.predict_matrix(matrix), expected, rtol=0, atol=1e-6)
    one = [predictor.predict_one(np.ascontiguousarray(row)) for row in matrix]
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-6)
    assert predictor.kind == ("lleaves" if kind == "compiled" else "lightgbm")


def test_reasons_on_request_and_by_setting(
    client: TestClient,
    strict: TestClient,
    model: LightGBMModel,
    fresh_table: pa.Table,
    customers: list[dict[str, Any]],
) -> None:
    plain = client.post("/v1/predict", json=customers[0]).json()
    assert "reasons" not in plain
    answer = client.post("/v1/predict?reasons=true", json=customers[0]).json()
    expected = model.explain(fresh_table.slice(0, 1))[0]
    assert answer["reasons"] == [
        {"feature": r.feature, "contribution": r.contribution} for r in expected
    ]
    assert len(strict.post("/v1/predict", json=customers[0]).json()["reasons"]) == 3
    assert "reasons" not in strict.post("/v1/predict?reasons=false", json=customers[0]).json()
    bad = client.post("/v1/predict?reasons=maybe", json=customers[0])
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "reasons"]
    unknown = client.post("/v1/predict?reason=true", json=customers[0])  # misspelt
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "reason"]
    for twice in ("reasons=false&reasons=false", "reasons=false&reasons=true", "reasons=true&="):
        refused = client.post(f"/v1/predict?{twice}", json=customers[0])  # R01's CI failure
        assert refused.status_code == 422, twice
        assert refused.json()["detail"][0]["loc"][0] == "query"


def _with(x: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**x, **changes}


def _without(x: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in x.items() if k != name}


def _overflow(x: dict[str, Any]) -> bytes:
    return orjson.dumps(_with(x, monthly_charges=123.25)).replace(b"123.25", b"1e999")


BAD_SINGLE: list[tuple[str, Any, str | None, str]] = [
    ("unknown field", lambda x: _with(x, shoe_size=42), "shoe_size", "unknown field"),
    ("missing field", lambda x: _without(x, "tenure_months"), "tenure_months", "missing"),
    ("wrong type", lambda x: _with(x, tenure_months="ten"), "tenure_months", "got `str`"),
    ("bool as number", lambda x: _with(x, tenure_months=True), "tenure_months", "got `bool`"),
    ("target", lambda x: _with(x, churned=1), "churned", "target column is not accepted"),
    ("overflow", lambda x: _overflow(x), "monthly_charges", "out of range"),
    ("bad date", lambda x: _with(x, signup_date="2026-13-45"), "signup_date", "not a valid"),
    ("zoned date", lambda x: _with(x, signup_date="2026-01-01T00:00Z"), "signup_date", "match"),
    ("bool as text", lambda x: _with(x, autopay="yes"), "autopay", "got `str`"),
    ("list", lambda x: [x], None, "Expected `object`"),
]


@pytest.mark.parametrize(("case", "mutate", "field", "message"), BAD_SINGLE)
def test_bad_customer_is_422_naming_the_field(
    client: TestClient,
    customers: list[dict[str, Any]],
    case: str,
    mutate: Any,
    field: str | None,
    message: str,
) -> None:
    body = mutate(dict(customers[0]))
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    answer = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, case
    detail = answer.json()["detail"][0]
    assert detail["loc"] == (["body", field] if field else ["body"])
    assert message in detail["msg"]


@pytest.mark.parametrize(
    "raw", [b"{", b'{"tenure_months": NaN}', b'{"x": Infinity}', b"\xff\xfe", b""]
)
def test_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    answer = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


def test_limits_and_media_types(strict: TestClient, customers: list[dict[str, Any]]) -> None:
    big = {**customers[0], "plan": "x" * 5_000}
    for path in ("/v1/predict", "/v1/predict/batch", "/invocations"):
        answer = strict.post(path, json=big if path == "/v1/predict" else [big])
        assert answer.status_code == 413, path
        assert answer.json()["detail"] == "request body is over the limit of 4096 bytes"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield b"["
        for _ in range(100):
            yield b'{"a": 1},' * 10

    for path in ("/v1/predict", "/v1/predict/batch"):
        assert strict.post(path, content=chunks()).status_code == 413
    rows = strict.post("/v1/predict/batch", json=customers[:6])
    assert rows.status_code == 413
    assert "batch of 6 rows is over the limit of 5" in rows.json()["detail"]
    for path in ("/v1/predict", "/v1/predict/batch", "/invocations"):
        answer = strict.post(path, content=b"x", headers={"content-type": "application/xml"})
        assert answer.status_code == 415, path
        assert "unsupported content type 'application/xml'" in answer.json()["detail"]


def test_numbers_past_the_largest_double_are_refused(
    client: TestClient, customers: list[dict[str, Any]]
) -> None:
    """``max + 1`` as a JSON integer rounds down to the largest double when decoded; the schema
    calls it out of range, so it must be refused, not scored (an R01 negative case in CI)."""
    beyond = int(sys.float_info.max) + 1
    for literal in (str(beyond), f"-{beyond}", "1.7976931348623158e308", "1e400"):
        one = orjson.dumps({**customers[0], "tenure_months": 0}).replace(
            b'"tenure_months":0', b'"tenure_months":' + literal.encode()
        )
        single = client.post(
            "/v1/predict", content=one, headers={"content-type": "application/json"}
        )
        batch = client.post(
            "/v1/predict/batch",
            content=b"[" + one + b"]",
            headers={"content-type": "application/json"},
        )
        assert (single.status_code, batch.status_code) == (422, 422), literal
        assert single.json()["detail"][0]["loc"] == ["body", "tenure_months"]
        assert batch.json()["detail"][0]["loc"] == ["body", 0, "tenure_months"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Customer"]
    assert (
        schema["properties"]["tenure_months"]["anyOf"][0]["exclusiveMaximum"] == sys.float_info.max
    )


def test_bad_batch_rows_name_row_and_column(client: TestClient, fresh_table: pa.Table) -> None:
    table = fresh_table.slice(0, 4).cast(
        pa.schema([pa.field(f.name, pa.string()) for f in fresh_table.schema])
    )
    values = table.column("tenure_months").to_pylist()
    values[2] = "ten"
    broken = table.set_column(
        table.schema.get_field_index("tenure_months"), "tenure_months", pa.array(values)
    )
    answer = client.post(
        "/v1/predict/batch", content=csv_bytes(broken), headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", 3, "tenure_months"]
    assert "not a number (value 'ten'; 1 bad row(s))" in detail["msg"]
    extra = client.post(
        "/v1/predict/batch",
        content=csv_bytes(table.append_column("churned", pa.array(["1"] * 4))),
        headers={"content-type": "text/csv"},
    )
    assert extra.json()["detail"][0]["msg"] == "churned: the target column is not accepted"
    json_rows = client.post("/v1/predict/batch", json=[{"tenure_months": 1}])
    assert json_rows.status_code == 422
    assert json_rows.json()["detail"][0]["loc"][:2] == ["body", 0]
    garbage = client.post("/v1/predict/batch", content=b"\x00\x01", headers={"content-type": ARROW})
    assert garbage.status_code == 422
    assert "unreadable" in garbage.json()["detail"][0]["msg"]


def test_not_ready_before_the_lifespan(bundle: Path, customers: list[dict[str, Any]]) -> None:
    client = TestClient(create_app(Settings(model=str(bundle))))  # lifespan not started
    assert client.get("/healthz").status_code == 200
    for path in ("/readyz", "/v2/health/ready", "/ping", "/v1/models"):
        answer = client.get(path)
        assert answer.status_code == 503, path
    answer = client.post("/v1/predict", json=customers[0])
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the model is not loaded yet"


def test_health_models_metrics_and_version_header(client: TestClient, model: LightGBMModel) -> None:
    version = client.get("/readyz").json()["model_version"]
    assert version == "sha256:" + model.metadata["manifest_sha256"][:12]
    models = client.get("/v1/models").json()["models"]
    assert models[0]["features"] == model.feature_names
    assert models[0]["trees"] == model.booster.num_trees()
    for path in ("/healthz", "/readyz", "/v1/models", "/metrics", "/openapi.json", "/nowhere"):
        assert client.get(path).headers["x-model-version"] == version, path
    text = client.get("/metrics").text
    assert 'churnscale_requests_total{route="/v1/predict",status="200"}' in text
    assert 'churnscale_request_seconds_bucket{le="0.001",route="/v1/predict"}' in text
    assert f'churnscale_model_info{{predictor="lleaves",version="{version}"}} 1.0' in text
    assert 'churnscale_errors_total{kind="value_error",route="/v1/predict"}' in text


def test_openapi_describes_the_customer(client: TestClient, model: LightGBMModel) -> None:
    document = client.get("/openapi.json").json()
    customer = document["components"]["schemas"]["Customer"]
    assert customer["required"] == model.feature_names
    assert customer["additionalProperties"] is False
    assert "churned" not in customer["properties"]
    assert "/v1/predict" in document["paths"] and "/v2/models/{name}/infer" in document["paths"]


def test_settings_and_references_are_validated(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_batch_rows"):
        Settings(max_batch_rows=0)
    with pytest.raises(ValidationError, match="model_name"):
        Settings(model_name="../x")
    with pytest.raises(ValidationError, match="must not be empty"):
        Settings(model="  ")
    with pytest.raises(ConfigError, match="model: expected a bundle path"):
        create_app(Settings())
    with pytest.raises(ModelNotFoundError, match="churn"):
        load_model("churn@champion", Settings(home=tmp_path / "home"))
    assert load_model(str(bundle), Settings()).feature_names


def test_compiled_forests_are_cached_verified_and_recompiled_when_tampered(
    model: LightGBMModel, fresh_table: pa.Table, tmp_path: Path
) -> None:
    matrix = model.preprocessor.transform(fresh_table)
    expected = model.predict_proba(fresh_table)
    first = Predictor(model, kind="compiled", cache=tmp_path)
    (obj,) = tmp_path.glob("*.o")
    digest = obj.with_name(obj.name + ".sha256")
    assert digest.read_text().strip() == hashlib.sha256(obj.read_bytes()).hexdigest()
    assert not list(tmp_path.glob(".*.tmp"))  # staged whole, renamed into place
    written = obj.stat().st_mtime_ns
    again = Predictor(model, kind="compiled", cache=tmp_path)  # loaded, not compiled
    assert obj.stat().st_mtime_ns == written
    for predictor in (first, again):
        np.testing.assert_allclose(predictor.predict_matrix(matrix), expected, atol=1e-6)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: never loaded, compiled afresh
    obj.write_bytes(bytes(data))
    healed = Predictor(model, kind="compiled", cache=tmp_path)
    assert digest.read_text().strip() == hashlib.sha256(obj.read_bytes()).hexdigest()
    np.testing.assert_allclose(healed.predict_matrix(matrix), expected, atol=1e-6)
