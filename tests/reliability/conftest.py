"""Fixtures of the data, artifact, registry and training rows: a small trained bundle, a live
service (``churnscale serve`` on 127.0.0.1 with small limits and the unpickling audit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_support import (
    FAST,
    LiveService,
    make_dataset,
    settings_with_store,
    start_service,
    stop_server,
)

from churnscale.config import Settings
from churnscale.registry import Registry
from churnscale.training.local import train_local


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
