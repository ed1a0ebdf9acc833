"""Shared fixtures: a seed, small generated data, temporary datasets."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.data.synthetic import generate_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def seed() -> int:
    return 7


@pytest.fixture(scope="session")
def small_table() -> pa.Table:
    """5,000 generated customers."""
    return generate_table(5_000, seed=3)
