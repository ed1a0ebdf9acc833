"""One model trained through the Python API (registered in a private MLflow store) for the API
tests, and new customers it never saw."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

import churnscale
from churnscale.config import Settings
from churnscale.data.synthetic import generate_table

#: Small, quick LightGBM parameters (one thread: the test machine is shared).
QUICK = {"learning_rate": 0.1, "max_rounds": 60, "early_stopping_rounds": 10, "threads": 1}


@pytest.fixture(scope="session")
def api_settings(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Settings:
    home = tmp_path_factory.mktemp("api-home")
    with sqlite3.connect(migrated_store) as source, sqlite3.connect(home / "mlflow.db") as target:
        source.backup(target)
    source.close()
    target.close()
    return Settings(home=home, tracking_uri=None)


@pytest.fixture(scope="session")
def customers() -> pa.Table:
    """3,000 labelled customers (seed 1)."""
    return generate_table(3_000, 1)


@pytest.fixture(scope="session")
def fresh() -> pa.Table:
    """400 labelled customers the model never saw (seed 9)."""
    return generate_table(400, 9)


@pytest.fixture(scope="session")
def trained(customers: pa.Table, api_settings: Settings) -> churnscale.ChurnModel:
    """``churnscale.train`` on a DataFrame with 3-fold CV, registered as ``api-churn/1``."""
    return churnscale.train(
        customers.to_pandas(),
        target="churned",
        cv=3,
        register=True,
        name="api-churn",
        settings=api_settings,
        **QUICK,
    )
