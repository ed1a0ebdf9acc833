"""``POST /v1/predict`` with a customer's events: the service's features are the builder's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from live_server import Server, start_server, stop_server

from churnscale.config import Settings
from churnscale.data.events import generate_events_table
from churnscale.data.store import iter_dataset, load_info
from churnscale.data.synthetic import generate_table
from churnscale.features.builder import build_features
from churnscale.features.sources import BuildSources
from churnscale.features.spec import FeatureSpec
from churnscale.model.lightgbm import LightGBMModel
from churnscale.serving.service import PredictionService
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import time_split_for

SPEC = FeatureSpec(windows=(7, 30), horizon=90)
LATEST = date(2026, 6, 30)
STATIC = ["customer_id", "contract_type", "plan", "monthly_charges"]
LOGIN = {"type": "login", "at": "2026-01-01"}
FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


class Built:
    """The event log, the built dataset's rows at the latest date, and the trained bundle."""

    def __init__(self, root: Path) -> None:
        self.events = generate_events_table(800, 21)
        self.static = generate_table(800, 21).select(STATIC)
        pq.write_table(self.events, root / "events.parquet")
        pq.write_table(self.static, root / "static.parquet")
        sources = BuildSources(str(root / "events.parquet"), str(root / "static.parquet"))
        build_features(sources, root / "ds", as_of=[date(2026, 5, 1), LATEST], spec=SPEC)
        schema, _ = load_info(root / "ds")
        table = pa.Table.from_batches(list(iter_dataset(root / "ds")))
        self.rows = table.filter(pc.equal(table["as_of"], pa.scalar(LATEST))).to_pylist()
        result = train_local(root / "ds", split=time_split_for(schema), params=FAST)
        self.bundle = result.model.save(root / "model")

    def request(self, row: dict[str, Any]) -> dict[str, Any]:
        """The events request of the builder's ``row``: its customer's whole log and attributes."""
        mine = self.events.filter(pc.equal(self.events["customer_id"], row["customer_id"]))
        events = [
            {"type": e["event_type"], "at": e["timestamp"].isoformat(), "amount": e["amount"]}
            for e in mine.to_pylist()
        ]
        static = {k: row[k] for k in STATIC[1:]}
        return {"customer_id": row["customer_id"], "as_of": LATEST.isoformat(), "events": events,
                **static}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return Built(tmp_path_factory.mktemp("events-model"))


@pytest.fixture(scope="module")
def service(built: Built) -> PredictionService:
    return PredictionService(LightGBMModel.load(built.bundle), Settings(model=str(built.bundle)))


@pytest.fixture(scope="module")
def live(built: Built) -> Iterator[Server]:
    running = start_server(built.bundle)
    yield running
    stop_server(running)


def test_the_bundle_knows_its_feature_spec(built: Built) -> None:
    model = LightGBMModel.load(built.bundle)
    assert FeatureSpec.from_dict(model.metadata["feature_spec"]) == SPEC


def test_service_features_equal_the_builders_row(built: Built, service: PredictionService) -> None:
    rows = built.rows[::15]
    assert len(rows) >= 40
    for row in rows:
        x = service.decoder.decode(orjson.dumps(built.request(row)))
        assert {n: x[n] for n in SPEC.feature_names()} == {n: row[n] for n in SPEC.feature_names()}
        assert x["plan"] == row["plan"] and x["customer_id"] == row["customer_id"]


def test_live_server_predicts_from_events_as_the_model_does_from_the_row(
    built: Built, live: Server
) -> None:
    model = LightGBMModel.load(built.bundle)
    rows = sorted(built.rows, key=lambda r: r["count_total"])[:: len(built.rows) // 12][:12]
    expected = model.predict_proba(pa.Table.from_pylist(rows))
    for row, want in zip(rows, expected.tolist(), strict=True):
        answer = httpx.post(f"{live.url}/v1/predict", json=built.request(row), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["customer_id"] == row["customer_id"]
        assert answer.json()["churn_probability"] == pytest.approx(want, abs=1e-6)
    batch = [built.request(r) for r in rows[:3]]
    answer = httpx.post(f"{live.url}/v1/predict/batch", json=batch, timeout=30)
    assert answer.status_code == 200, answer.text
    got = [p["churn_probability"] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(got, expected[:3], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"as_of": None}, "as_of", "required with events"),
        ({"as_of": "2026-13-01"}, "as_of", "not a valid date"),
        ({"count_total": 3.0}, "count_total", "computed from the events"),
        ({"events": [LOGIN, {"type": "refund", "at": "2026-01-02"}]}, "events[1].type",
         "expected one of login"),
        ({"events": [{"type": "login", "at": "yesterday"}]}, "events[0].at", "Expected `str`"),
        ({"events": [{"type": "login", "at": "2026-01-01", "colour": 1}]}, "events[0]",
         "Object contains unknown field `colour`"),
        ({"plan": 3.5}, "plan", "Expected `int | str | null`"),
    ],
)  # fmt: skip
def test_bad_events_requests_are_422_naming_the_field(
    built: Built, live: Server, change: dict[str, Any], field: str, message: str
) -> None:
    body = {**built.request(built.rows[0]), **change}
    answer = httpx.post(f"{live.url}/v1/predict", json=body, timeout=30)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"][-1] == field and message in detail["msg"], detail
