"""Shared fixtures: a seed, small generated data, temporary datasets; the unpickling audit (R12).

The audit hook is installed when this file is imported, before any test runs, and stays for the
whole session: at the end the session fails if the service, batch scoring or online paths
unpickled anything without an HMAC check (see ``churnscale.unpickling``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.registry import Registry
from churnscale.unpickling import UnpicklingAudit

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
UNPICKLING = UnpicklingAudit().install()


@pytest.fixture
def seed() -> int:
    return 7


@pytest.fixture(scope="session")
def small_table() -> pa.Table:
    """5,000 generated customers."""
    return generate_table(5_000, seed=3)


@pytest.fixture(scope="session")
def churn_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 generated customers (seed 11) stored as a dataset with target ``churned``."""
    root = tmp_path_factory.mktemp("churn")
    write_batches(generate_table(6_000, 11).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    return root / "ds"


@pytest.fixture(scope="session")
def uplift_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 generated customers with a randomized offer (seed 11), stored with outcome
    ``retained``; the ground truth ``true_uplift`` is dropped."""
    root = tmp_path_factory.mktemp("uplift")
    write_batches(generate_table(4_000, 11, treatment=True).to_batches(), root / "raw.parquet")
    hints = SchemaHints(target="retained", drop=("true_uplift",))
    ingest(str(root / "raw.parquet"), root / "ds", hints=hints)
    return root / "ds"


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


@pytest.fixture(scope="session")
def unpickling_audit() -> UnpicklingAudit:
    """The session's audit of every unpickling (R12)."""
    return UNPICKLING


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when a watched path unpickled without an HMAC check (R12)."""
    bad = UNPICKLING.violations()
    if bad:
        shown = "; ".join(f"{e.module}.{e.name} via {' < '.join(e.callers)}" for e in bad[:5])
        print(f"\nR12: {len(bad)} unpickling(s) in the service/batch/online paths: {shown}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
