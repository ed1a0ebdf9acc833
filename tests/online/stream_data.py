"""Helpers for the online tests: generated records as dicts, written as JSON Lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from churnscale.data.synthetic import generate_table

KEY = "test-checkpoint-key-0123456789"


def churn_records(rows: int, seed: int) -> list[dict[str, Any]]:
    """``rows`` generated customers as JSON-ready dicts."""
    return generate_table(rows, seed=seed).to_pylist()


def write_jsonl(path: Path, records: list[Any], *, bad: dict[int, bytes] | None = None) -> Path:
    """Write ``records`` one per line; ``bad`` puts raw lines at given 0-based positions."""
    lines = [orjson.dumps(r) for r in records]
    for position, raw in sorted((bad or {}).items()):
        lines.insert(position, raw)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
