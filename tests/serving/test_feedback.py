"""Feedback and live drift in the service: TestClient for the rules, one real uvicorn server."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from live_server import Server
from sklearn.metrics import roc_auc_score

from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import build_reference
from churnscale.monitoring.simulation import shift_numeric
from churnscale.serving.app import create_app
from churnscale.serving.feedback import Feedback

WHEN = "2026-07-31T12:00:00"


@pytest.fixture(scope="module")
def monitored_bundle(model: LightGBMModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's model with a drift reference (its training data's generator and seed)."""
    reference = build_reference(model, generate_table(8_000, 5).to_batches())
    copy = LightGBMModel(model.preprocessor, model.booster, model.metadata, reference=reference)
    return copy.save(tmp_path_factory.mktemp("monitored") / "model")


@pytest.fixture(scope="module")
def labelled() -> pa.Table:
    return generate_table(1_200, 41)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """Customers as a client sends them (dates as ISO text), without the label."""
    return [
        {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in r.items()}
        for r in table.drop_columns(["churned"]).to_pylist()
    ]


def _client(bundle: Path, **options: Any) -> TestClient:
    settings = Settings(model=str(bundle), predictor="lightgbm", **options)
    return TestClient(create_app(settings))


@pytest.fixture
def client(monitored_bundle: Path) -> Iterator[TestClient]:
    with _client(monitored_bundle, drift_min_rows=200, drift_window_rows=1_000) as c:
        yield c


def _feedback(customer: str, churned: Any = True, **extra: Any) -> dict[str, Any]:
    return {"customer_id": customer, "churned": churned, "observed_at": WHEN, **extra}


def test_an_unknown_customer_is_accepted_as_unmatched(client: TestClient) -> None:
    answer = client.post("/v1/feedback", json=_feedback("C-never-seen"))
    assert answer.status_code == 202
    assert answer.json() == {"status": "unmatched", "customer_id": "C-never-seen", "joined": []}
    assert 'churnscale_feedback_total{outcome="unmatched"} 1.0' in client.get("/metrics").text


def test_a_label_joins_the_logged_prediction_once(client: TestClient, labelled: pa.Table) -> None:
    x = _rows(labelled)[0]
    predicted = client.post("/v1/predict", json=x).json()
    answer = client.post("/v1/feedback", json=_feedback(x["customer_id"], churned=1))
    assert answer.status_code == 200
    assert answer.json()["joined"] == [
        {
            "model_version": predicted["model_version"],
            "arm": "",
            "churn_probability": predicted["churn_probability"],
        }
    ]
    again = client.post("/v1/feedback", json=_feedback(x["customer_id"], churned=1))
    assert again.status_code == 202 and again.json()["status"] == "unmatched"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_feedback("C1", churned="maybe"), "churned"),
        (_feedback("C1", churned=2), "churned"),
        ({"customer_id": "C1", "churned": True}, "observed_at"),
        (_feedback("C1") | {"observed_at": "last tuesday"}, "observed_at"),
        (_feedback(""), "customer_id"),
        (_feedback("C1", extra=1), "extra"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/feedback", json=body)
    assert answer.status_code == 422
    assert [e["loc"][-1] for e in answer.json()["detail"]] == [field]


def test_live_auc_and_calibration_on_metrics_equal_the_joined_labels(
    client: TestClient, labelled: pa.Table
) -> None:
    rows = _rows(labelled)
    answer = client.post("/v1/predict/batch", json=rows[:250]).json()
    version = answer["model_version"]
    scores = np.array([p["churn_probability"] for p in answer["predictions"]])
    labels = labelled.column("churned").to_numpy()[:250]
    for x, y in zip(rows[:250], labels, strict=True):
        assert client.post("/v1/feedback", json=_feedback(x["customer_id"], bool(y))).is_success
    text = client.get("/metrics").text
    auc = _gauge(text, "churnscale_live_roc_auc", version)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert _gauge(text, "churnscale_live_labels", version) == 250
    assert _gauge(text, "churnscale_live_churn_rate", version) == pytest.approx(labels.mean())
    assert 0 <= _gauge(text, "churnscale_live_calibration_error", version) < 0.1


def _gauge(text: str, name: str, version: str) -> float:
    pattern = rf'^{name}{{arm="",version="{re.escape(version)}"}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name} not exported:\n{text}"
    return float(found.group(1))


def test_a_subscribed_hook_gets_features_and_label(
    client: TestClient, labelled: pa.Table, model: LightGBMModel
) -> None:
    received: list[Feedback] = []
    client.app.app.state.monitor.feedback.subscribe(received.append)  # type: ignore[attr-defined]
    x = _rows(labelled)[5]
    client.post("/v1/predict", json=x)
    client.post("/v1/feedback", json=_feedback(x["customer_id"], False))
    (got,) = received
    assert got.customer_id == x["customer_id"] and got.churned is False
    expected = model.preprocessor.transform(labelled.slice(5, 1))[0]
    np.testing.assert_array_equal(got.joined[0].row, expected)


def test_live_drift_waits_for_rows_then_names_the_drifted_feature(
    client: TestClient, labelled: pa.Table
) -> None:
    first = client.get("/v1/monitoring/drift").json()
    assert first == {"status": "insufficient_data", "window_rows": 0, "needed_rows": 200}
    drifted = shift_numeric(labelled, "usage_minutes_30d", scale=3.0)
    client.post("/v1/predict/batch", json=_rows(drifted)[:900])
    for x in _rows(drifted)[900:1_000]:
        client.post("/v1/predict", json=x)
    report = client.get("/v1/monitoring/drift").json()
    assert report["status"] == "ok" and report["window_rows"] == 1_000
    assert [f["name"] for f in report["drifted_features"]] == ["usage_minutes_30d"]
    assert report["drifted_features"][0]["psi"] > 0.2
    metric = re.search(
        r'^churnscale_drift_psi{feature="usage_minutes_30d",version="[^"]+"} (\S+)$',
        client.get("/metrics").text,
        re.MULTILINE,
    )
    assert metric and float(metric.group(1)) == pytest.approx(report["drifted_features"][0]["psi"])


def test_live_drift_without_a_reference_is_a_409(bundle: Path) -> None:
    with _client(bundle) as plain:
        answer = plain.get("/v1/monitoring/drift")
    assert answer.status_code == 409
    assert "no drift reference" in answer.json()["detail"]


def test_the_prediction_log_is_bounded(monitored_bundle: Path, labelled: pa.Table) -> None:
    with _client(monitored_bundle, feedback_predictions=100) as small:
        rows = _rows(labelled)[:300]
        small.post("/v1/predict/batch", json=rows)
        oldest = small.post("/v1/feedback", json=_feedback(rows[0]["customer_id"]))
        newest = small.post("/v1/feedback", json=_feedback(rows[-1]["customer_id"]))
    assert (oldest.status_code, newest.status_code) == (202, 200)


def test_feedback_on_a_real_server(server: Server, labelled: pa.Table) -> None:
    """The session's uvicorn server (its bundle has no drift reference)."""
    x = _rows(labelled)[9]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.post("/v1/predict", json=x).status_code == 200
        joined = http.post("/v1/feedback", json=_feedback(x["customer_id"]))
        bad = http.post("/v1/feedback", json=_feedback(x["customer_id"], churned="yes!"))
        metrics = http.get("/metrics").text
        drift = http.get("/v1/monitoring/drift")
    assert joined.status_code == 200 and joined.json()["status"] == "joined"
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "churned"]
    # the session's server is shared with other tests (the fuzz test sends feedback too)
    labels = re.search(r"^churnscale_live_labels{.*} (\S+)$", metrics, re.MULTILINE)
    assert labels and float(labels.group(1)) >= 1.0
    assert drift.status_code == 409 and "no drift reference" in drift.json()["detail"]


def test_arms_and_a_shadow_each_get_their_label_and_only_the_primary_feeds_drift(
    model: LightGBMModel, labelled: pa.Table
) -> None:
    from prometheus_client import CollectorRegistry

    from churnscale.serving.monitoring import ModelMonitor
    from churnscale.serving.service import PredictionService

    settings = Settings(model="unused", predictor="lightgbm")
    monitor = ModelMonitor(settings, CollectorRegistry())
    champion = PredictionService(model, settings)
    shadow = PredictionService(
        LightGBMModel(model.preprocessor, model.booster, {"version": "7"}), settings
    )
    monitor.attach(champion, arm="control")
    monitor.attach(shadow, arm="shadow", primary=False)
    x = labelled.drop_columns(["churned"]).slice(0, 1).to_pylist()[0]
    champion.answer(dict(x), reasons=False)
    shadow.answer(dict(x), reasons=False)
    assert monitor.window is not None and len(monitor.window) == 1
    got = monitor.feedback.receive(x["customer_id"], True, datetime.datetime(2026, 7, 31))
    assert sorted((p.version, p.arm) for p in got.joined) == [
        ("7", "shadow"),
        (champion.version, "control"),
    ]
    figures = monitor.feedback.figures()
    assert figures[("7", "shadow")]["labels"] == 1.0
    assert figures[(champion.version, "control")]["churn_rate"] == 1.0
