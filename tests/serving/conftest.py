"""Fixtures for the service: a small trained bundle, customers, a real uvicorn server."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from live_server import Server, start_server, stop_server

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.local import TrainParams, train_local

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model bundle trained on 20,000 generated customers (a few seconds)."""
    root = tmp_path_factory.mktemp("serving-model")
    write_batches(generate_table(20_000, 5).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    train_local(root / "ds", params=FAST).model.save(root / "model")
    return root / "model"


@pytest.fixture(scope="session")
def model(bundle: Path) -> LightGBMModel:
    return LightGBMModel.load(bundle)


@pytest.fixture(scope="session")
def fresh_table() -> pa.Table:
    """Customers the model never saw, without the target."""
    return generate_table(300, 91).drop_columns(["churned"])


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """One customer as a client sends it (dates as ISO text)."""
    return {
        k: v.isoformat() if isinstance(v, datetime.date | datetime.datetime) else v
        for k, v in row.items()
    }


@pytest.fixture(scope="session")
def customers(fresh_table: pa.Table) -> list[dict[str, Any]]:
    return [as_json(r) for r in fresh_table.to_pylist()]


@pytest.fixture(scope="session")
def server(bundle: Path) -> Iterator[Server]:
    running = start_server(bundle)
    yield running
    stop_server(running)
