"""Reliability fixtures: a small trained bundle, datasets, a live service with small limits and
the unpickling audit (data, artifact, registry and training rows); a model root of small
bundles (good, other, incompatible, corrupt, truncated), customers and one key-protected
server (serving rows)."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rel_support import (
    FAST,
    LiveService,
    make_dataset,
    settings_with_store,
    start_service,
    stop_server,
)
from reliability_server import ADMIN_KEY, PREDICT_KEY, Bundles, Server, start, stop

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry
from churnscale.serving.service import model_version
from churnscale.training.local import TrainParams, train_local


@pytest.fixture(scope="session")
def rel_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model bundle trained on 20,000 generated customers (a few seconds)."""
    root = tmp_path_factory.mktemp("reliability-model")
    train_local(make_dataset(root, 20_000), params=FAST).model.save(root / "model")
    return root / "model"


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with every migration applied (migrating takes seconds)."""
    home = tmp_path_factory.mktemp("registry-template")
    registry = Registry(Settings(home=home, tracking_uri=None))
    registry.list_models()
    registry.client.search_experiments()
    return home / "mlflow.db"


@pytest.fixture
def rel_settings(tmp_path: Path, migrated_store: Path) -> Settings:
    """Settings whose home holds a fresh copy of the migrated SQLite store."""
    return settings_with_store(tmp_path / "home", migrated_store)


@pytest.fixture(scope="session")
def live_service(
    rel_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """``churnscale serve`` on 127.0.0.1 with a 1,000,000-byte body and 100-row batch limit."""
    log = tmp_path_factory.mktemp("audit") / "unpickling.jsonl"
    server = start_service(rel_bundle, log)
    yield LiveService(server, log)
    stop_server(server)


@pytest.fixture(scope="session")
def dist_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30,000 customers stored in row groups of 4,096 rows, so that two workers share them."""
    return make_dataset(tmp_path_factory.mktemp("dist"), 30_000, batch_rows=4_096)


SERVING_FAST = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)


def _train(root: Path, name: str, *, seed: int, drop: str | None = None) -> Path:
    table = generate_table(6_000, seed)
    if drop is not None:
        table = table.drop_columns([drop])
    work = root.parent / f"work-{name}"
    write_batches(table.to_batches(), work / "raw.parquet")
    ingest(str(work / "raw.parquet"), work / "ds", hints=SchemaHints(target="churned"))
    train_local(work / "ds", params=SERVING_FAST).model.save(root / name)
    return root / name


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """Bundles ``a`` and ``b`` (same schema, different trees), ``incompatible`` (a column
    fewer), ``corrupt`` (model file altered after its manifest) and ``truncated``."""
    root = tmp_path_factory.mktemp("reliability") / "models"
    a = _train(root, "a", seed=11)
    b = _train(root, "b", seed=12)
    _train(root, "incompatible", seed=13, drop="tenure_months")
    shutil.copytree(b, root / "corrupt")
    model_file = root / "corrupt" / "model.txt"
    model_file.write_text(model_file.read_text() + "\n")  # one byte more than its manifest says
    shutil.copytree(b, root / "truncated")
    text = (root / "truncated" / "model.txt").read_bytes()
    (root / "truncated" / "model.txt").write_bytes(text[: len(text) // 2])
    return Bundles(root, model_version(LightGBMModel.load(a)), model_version(LightGBMModel.load(b)))


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """One customer as a client sends it (dates as ISO text)."""
    return {
        k: v.isoformat() if isinstance(v, datetime.date | datetime.datetime) else v
        for k, v in row.items()
    }


@pytest.fixture(scope="session")
def customers() -> list[dict[str, Any]]:
    """300 customers no model saw, without the target."""
    return [as_json(r) for r in generate_table(300, 91).drop_columns(["churned"]).to_pylist()]


@pytest.fixture(scope="session")
def guarded(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with predict and admin keys serving bundle ``a`` from the model root. It uses
    LightGBM's own predictor (no lleaves compile), so a reload takes a fraction of a second."""
    home = tmp_path_factory.mktemp("guarded-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_MODEL_ROOT": str(bundles.root),
        "CHURNSCALE_API_KEYS": PREDICT_KEY,
        "CHURNSCALE_ADMIN_API_KEYS": ADMIN_KEY,
        "CHURNSCALE_PREDICTOR": "lightgbm",
    }
    server = start(home / "server.log", env)
    yield server
    stop(server)
