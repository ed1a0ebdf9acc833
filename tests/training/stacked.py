"""A small stacked as-of dataset made in code: customers at several dates, a known signal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.writers import write_batches

DATES = ("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01")


def stacked_dataset(
    root: Path, *, dates: tuple[str, ...] = DATES, rows: int = 600, flip_last: bool = False,
    seed: int = 11,
) -> Path:  # fmt: skip
    """``rows`` customers at each of ``dates``: churn follows ``signal`` (reversed at the
    last date when ``flip_last``), ``noise`` is noise. Stored with id, target and as-of roles."""
    rng = np.random.default_rng(seed)
    parts = []
    for position, day in enumerate(dates):
        signal = rng.normal(size=rows)
        sign = -1.0 if flip_last and position == len(dates) - 1 else 1.0
        churned = (sign * signal + rng.normal(scale=0.7, size=rows) > 0.3).astype(np.int64)
        parts.append(
            pa.table(
                {
                    "customer_id": [f"c{i}" for i in range(rows)],
                    "as_of": pa.array([datetime.fromisoformat(day)] * rows, pa.timestamp("us")),
                    "signal": signal,
                    "noise": rng.normal(size=rows),
                    "churned": churned,
                }
            )
        )
    raw = root / "raw.parquet"
    write_batches(pa.concat_tables(parts).to_batches(), raw)
    hints = SchemaHints(target="churned", id="customer_id", as_of_column="as_of")
    ingest(str(raw), root / "ds", hints=hints)
    return root / "ds"
