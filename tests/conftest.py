"""Shared fixtures: a seed, small generated data, temporary datasets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.registry import Registry

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def seed() -> int:
    return 7


@pytest.fixture(scope="session")
def small_table() -> pa.Table:
    """5,000 generated customers."""
    return generate_table(5_000, seed=3)


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with every migration applied (migrating takes seconds)."""
    home = tmp_path_factory.mktemp("template")
    registry = Registry(Settings(home=home, tracking_uri=None))
    assert registry.list_models() == []
    registry.client.search_experiments()
    template = home.parent / "template-mlflow.db"
    with sqlite3.connect(home / "mlflow.db") as source, sqlite3.connect(template) as target:
        source.backup(target)
    source.close()
    target.close()
    return template
