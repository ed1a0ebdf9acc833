"""R34 (issue 15 item 8): any column name a CSV can hold ingests, trains, scores and serves.

Pass figure: a CSV whose feature columns are named with LightGBM's forbidden JSON characters
(``"`` ``,`` ``:`` ``[`` ``]`` ``{`` ``}``), a space and an underscore twin that collide once
LightGBM turns spaces into underscores, non-ASCII letters, rich markup, an escape code and a
Python keyword is ingested, trained locally and on a Dask cluster, exported to ONNX, batch
scored with reasons and served (``/v1/predict``, a batch, an error naming the column); every
report, reason and answer uses the user's names; LightGBM only ever sees safe internal names.
On 866115b training stops with "Do not support special JSON characters in feature name".
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.export.writer import export_model
from churnscale.features.names import lightgbm_names
from churnscale.model.lightgbm import LightGBMModel
from churnscale.scoring import score
from churnscale.serving.app import create_app
from churnscale.training.distributed import train_distributed
from churnscale.training.local import TrainParams, train_local

pytestmark = pytest.mark.reliability

#: generated column → a name a CSV can hold and LightGBM cannot take as it is
HOSTILE = {
    "tenure_months": 'tenure "months"',
    "contract_type": "contract:type",
    "plan": "{plan}",
    "monthly_charges": "charges, monthly",
    "usage_minutes_30d": "usage [30d]",
    "usage_trend": "usage trend",
    "sessions_trend": "usage_trend",  # LightGBM would turn "usage trend" into this
    "days_since_last_login": "dernière connexion (jours)",
    "satisfaction_score": "[red]satisfaction[/red]",
    "support_tickets_90d": "\x1b[31mtickets",
    "region": "class",
}
FAST = TrainParams(learning_rate=0.3, max_rounds=30, early_stopping_rounds=5, threads=1)


@pytest.fixture(scope="module")
def hostile_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 generated customers written as CSV under the hostile names, then ingested."""
    root = tmp_path_factory.mktemp("r34")
    table = generate_table(4_000, seed=34)
    table = table.rename_columns([HOSTILE.get(n, n) for n in table.column_names])
    with (root / "raw.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow(["" if v is None else v for v in row.values()])
    ingest(str(root / "raw.csv"), root / "ds", hints=SchemaHints(target="churned"))
    return root / "ds"


@pytest.fixture(scope="module")
def trained(hostile_dataset: Path) -> LightGBMModel:
    return train_local(hostile_dataset, params=FAST).model


def test_the_internal_names_are_safe_and_unique() -> None:
    names = lightgbm_names(list(HOSTILE.values()))
    assert len(set(names)) == len(names)
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
               for n in names)  # fmt: skip
    plain = ["tenure_months", "plan", "usage_trend"]
    assert lightgbm_names(plain) == plain  # models of plain names are unchanged


def test_local_training_keeps_the_users_names(trained: LightGBMModel) -> None:
    assert set(HOSTILE.values()) <= set(trained.feature_names)
    assert set(trained.importance()) == set(trained.feature_names)
    row = generate_table(1, seed=3).rename_columns(
        [HOSTILE.get(n, n) for n in generate_table(1, seed=3).column_names]
    )
    reasons = trained.explain(row.drop_columns(["churned"]))[0]
    assert {r.feature for r in reasons} <= set(trained.feature_names)
    booster_names = trained.booster.feature_name()
    assert booster_names == lightgbm_names(trained.feature_names)
    print(f"R34: {len(HOSTILE)} hostile names trained; LightGBM saw {booster_names[:4]} ...")


def test_dask_training_takes_the_same_names(hostile_dataset: Path, trained: LightGBMModel) -> None:
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        result = train_distributed(hostile_dataset, cluster=cluster.scheduler_address, params=FAST)
    assert result.model.feature_names == trained.feature_names
    assert result.model.booster.feature_name() == lightgbm_names(trained.feature_names)


@pytest.fixture(scope="module")
def bundle(trained: LightGBMModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained.save(tmp_path_factory.mktemp("r34-model") / "model")


def test_export_and_batch_scoring_with_reasons(
    bundle: Path, hostile_dataset: Path, tmp_path: Path
) -> None:
    model = LightGBMModel.load(bundle)
    report = export_model(model, "onnx", tmp_path / "onnx", probe=500)
    assert report.max_abs_diff < 1e-5
    out = tmp_path / "scores.parquet"
    info = score(str(hostile_dataset), model, out, settings=Settings(home=tmp_path), reasons=True)
    assert info.rows == 4_000
    named = {r["feature"] for rs in pq.read_table(out, columns=["reasons"])["reasons"].to_pylist()
             for r in rs}  # fmt: skip
    assert named and named <= set(model.feature_names)


@pytest.fixture(scope="module")
def client(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("r34-home")
    with TestClient(create_app(Settings(model=str(bundle), home=home))) as c:
        yield c


def _customer() -> dict[str, Any]:
    table = generate_table(2, seed=9).drop_columns(["churned"])
    table = table.rename_columns([HOSTILE.get(n, n) for n in table.column_names])
    row = table.to_pylist()[0]
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in row.items()}


def test_the_service_answers_under_the_users_names(client: TestClient) -> None:
    customer = _customer()
    answer = client.post("/v1/predict?reasons=true", json=customer)
    assert answer.status_code == 200, answer.text
    assert {r["feature"] for r in answer.json()["reasons"]} <= set(customer)
    assert client.post("/v1/predict/batch", json=[customer, customer]).status_code == 200
    missing = {k: v for k, v in customer.items() if k != 'tenure "months"'}
    refused = client.post("/v1/predict", json=missing)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", 'tenure "months"']
    wrong = {**customer, "{plan}": 5.5}
    refused = client.post("/v1/predict", json=wrong)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "{plan}"
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Customer"]
    assert set(HOSTILE.values()) <= set(schema["properties"])
