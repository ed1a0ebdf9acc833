"""Fixtures of the online tests."""

from __future__ import annotations

from typing import Any

import pytest
from stream_data import churn_records


@pytest.fixture(scope="session")
def records() -> list[dict[str, Any]]:
    """3,000 labelled records."""
    return churn_records(3_000, seed=11)
