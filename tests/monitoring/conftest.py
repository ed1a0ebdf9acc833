"""A small trained model with its drift reference, and the data it was trained on."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, iter_dataset
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import build_reference
from churnscale.training.local import TrainParams, train_local

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


@pytest.fixture(scope="session")
def trained_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12,000 generated customers stored as a dataset."""
    root = tmp_path_factory.mktemp("drift-data")
    write_batches(generate_table(12_000, 11).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    return root / "ds"


@pytest.fixture(scope="session")
def drift_model(trained_dataset: Path) -> LightGBMModel:
    """A model trained on ``trained_dataset`` whose reference is that dataset."""
    model = train_local(trained_dataset, params=FAST).model
    model.reference = build_reference(model, iter_dataset(trained_dataset, batch_rows=4_096))
    return model


@pytest.fixture(scope="session")
def drift_bundle(drift_model: LightGBMModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return drift_model.save(tmp_path_factory.mktemp("drift-bundle") / "model")


@pytest.fixture(scope="session")
def fresh() -> pa.Table:
    """12,000 customers from the same process, never seen in training."""
    return generate_table(12_000, 97)
