"""The service's value at risk: ``expected_loss`` = probability × value beside the probability."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient
from live_server import Server

from churnscale.config import Settings
from churnscale.serving.app import create_app
from churnscale.serving.errors import InvalidInputError

FEATURE = "monthly_charges"


@pytest.fixture(scope="module")
def client(bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model=str(bundle)))) as c:
        yield c


def test_a_customer_with_a_value_gets_its_expected_loss(
    client: TestClient, customers: list[dict[str, Any]]
) -> None:
    plain = client.post("/v1/predict", json=customers[0]).json()
    assert "value" not in plain and "expected_loss" not in plain  # no value, nothing added
    for value in (250.0, 0, 1e6):
        body = client.post("/v1/predict", json={**customers[0], "value": value}).json()
        assert body["churn_probability"] == plain["churn_probability"]
        assert body["value"] == value
        assert body["expected_loss"] == plain["churn_probability"] * value
    null = client.post("/v1/predict", json={**customers[0], "value": None}).json()
    assert null == plain


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1.0, "Expected `float` >= 0.0"),
        ("12", "Expected `float | null`, got `str`"),
        (True, "Expected `float | null`, got `bool`"),
        ([3], "Expected `float | null`, got `array`"),
    ],
)
def test_a_bad_value_is_a_422_naming_the_field(
    client: TestClient, customers: list[dict[str, Any]], value: object, reason: str
) -> None:
    answer = client.post("/v1/predict", json={**customers[0], "value": value})
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "value"] and detail["msg"].startswith(f"value: {reason}")


def test_the_batch_answers_value_and_expected_loss_per_row(
    client: TestClient, customers: list[dict[str, Any]]
) -> None:
    rows = [{**customers[0], "value": 100.0}, customers[1], {**customers[2], "value": 7}]
    body = client.post("/v1/predict/batch", json=rows).json()["predictions"]
    assert set(body[1]) == {"customer_id", "churn_probability"}
    for row, sent in ((body[0], 100.0), (body[2], 7.0)):
        assert row["value"] == sent
        assert row["expected_loss"] == row["churn_probability"] * sent
    bad = client.post("/v1/predict/batch", json=[customers[0], {**customers[1], "value": -2}])
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", 1, "value"]


def test_a_csv_batch_with_a_value_column(client: TestClient, fresh_table: pa.Table) -> None:
    table = fresh_table.slice(0, 4).append_column("value", pa.array([10.0, None, 0.5, 3.0]))
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    headers = {"content-type": "text/csv"}
    answer = client.post("/v1/predict/batch", content=sink.getvalue(), headers=headers)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    assert "value" not in rows[1]
    assert [r.get("value") for r in rows] == [10.0, None, 0.5, 3.0]
    assert all(
        r["expected_loss"] == r["churn_probability"] * r["value"] for r in rows if "value" in r
    )
    for bad, reason in (
        ("-4", "row 2: value: a value must be a finite number >= 0, got -4.0"),
        ("x", "row 2: value: not a number (value 'x'; 1 bad row(s))"),
    ):
        strings = pa.array(["1", bad, "2"])
        sink = io.BytesIO()
        pacsv.write_csv(fresh_table.slice(0, 3).append_column("value", strings), sink)
        answer = client.post("/v1/predict/batch", content=sink.getvalue(), headers=headers)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"][0]
        assert detail["loc"] == ["body", 2, "value"] and detail["msg"] == reason


def test_a_numeric_feature_may_be_the_value(bundle: Path, customers: list[dict[str, Any]]) -> None:
    with TestClient(create_app(Settings(model=str(bundle), value_field=FEATURE))) as client:
        body = client.post("/v1/predict", json=customers[0]).json()
        assert body["value"] == customers[0][FEATURE]
        assert body["expected_loss"] == body["churn_probability"] * customers[0][FEATURE]
        refused = client.post("/v1/predict", json={**customers[0], "value": 3.0})
        assert refused.status_code == 422  # "value" is an unknown field now
        negative = client.post("/v1/predict", json={**customers[0], FEATURE: -3.0})
        assert negative.status_code == 422
        assert negative.json()["detail"][0]["loc"] == ["body", FEATURE]
    with TestClient(create_app(Settings(model=str(bundle), value_field=""))) as client:
        off = client.post("/v1/predict", json={**customers[0], "value": 3.0})
        assert off.status_code == 422 and "unknown field `value`" in off.text


def test_the_fast_path_answers_expected_loss(
    server: Server, customers: list[dict[str, Any]]
) -> None:
    with httpx.Client(base_url=server.url) as http:
        plain = http.post("/v1/predict", json=customers[3]).json()
        body = http.post("/v1/predict", json={**customers[3], "value": 40.0}).json()
        bad = http.post("/v1/predict", json={**customers[3], "value": -40.0})
    assert body["expected_loss"] == plain["churn_probability"] * 40.0
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "value"]


def test_the_decoded_customer_holds_the_value_only_when_given(bundle: Path) -> None:
    from churnscale.model.lightgbm import LightGBMModel
    from churnscale.serving.customer import CustomerDecoder

    decoder = CustomerDecoder(LightGBMModel.load(bundle).preprocessor.schema, value_field="value")
    features = dict.fromkeys(decoder.features)
    assert "value" not in decoder.convert(features)  # logs and exports see no new column
    assert "value" not in decoder.convert({**features, "value": None})
    assert decoder.convert({**features, "value": 2.5})["value"] == 2.5
    body = orjson.dumps(features)[:-1] + b',"value":1,"value":2}'
    with pytest.raises(InvalidInputError, match="value: the key is repeated"):
        decoder.decode(body)  # a repeated key is refused, as for every field
