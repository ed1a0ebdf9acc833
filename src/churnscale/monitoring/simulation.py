"""Injected drift for tests, demos and benchmarks: shifted numbers, re-drawn categories, dates.

Each function returns a new table; the input is never changed, and randomness comes from the
``seed`` given (never numpy's global generator).
"""

from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _replace(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    index = table.column_names.index(name)
    return table.set_column(index, pa.field(name, column.type), column)


def shift_numeric(
    table: pa.Table, name: str, *, scale: float = 1.0, offset: float = 0.0
) -> pa.Table:
    """``name`` becomes ``value * scale + offset`` (missing values stay missing).

    >>> t = pa.table({"x": [1.0, None, 3.0]})
    >>> shift_numeric(t, "x", scale=2.0, offset=1.0).column("x").to_pylist()
    [3.0, None, 7.0]
    """
    column = table.column(name).combine_chunks()
    values = pc.add(pc.multiply(column.cast(pa.float64()), scale), offset)
    return _replace(table, name, values.cast(column.type, safe=False))


def redraw_categories(
    table: pa.Table, name: str, *, value: str, share: float, seed: int = 0
) -> pa.Table:
    """Set a random ``share`` of the rows of categorical column ``name`` to ``value``."""
    column = table.column(name).combine_chunks().cast(pa.string())
    rng = np.random.default_rng(seed)
    chosen = pa.array(rng.random(len(column)) < share)
    return _replace(table, name, pc.if_else(chosen, pa.scalar(value), column))


def spread_dates(table: pa.Table, name: str, *, start: datetime.date, days: int) -> pa.Table:
    """Date column ``name`` running from ``start`` over ``days`` days in row order."""
    offsets = (np.arange(table.num_rows) * days) // max(table.num_rows, 1)
    dates = np.datetime64(start, "D") + offsets.astype("timedelta64[D]")
    column = pa.array(dates).cast(table.schema.field(name).type)
    return _replace(table, name, column)
