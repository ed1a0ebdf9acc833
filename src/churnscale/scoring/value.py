"""Value at risk in batch scoring: a per-customer value column, expected losses, ranked output.

``churnscale score DATA --model M --value-col COL [--rank]`` reads COL (a numeric column of the
data; a feature of the model or any other column) beside the model's columns and writes, for
every row, ``value`` and ``expected_loss`` = ``churn_probability × value`` (for a survival
model also ``expected_loss_H`` = ``churn_within_H × value`` at each horizon), computed by
:func:`churnscale.value.risk.expected_losses`. A missing value gives a missing loss; a
negative or infinite one stops the run naming the column and the customer.

``--rank`` writes the rows sorted by expected loss (by churn probability without a value
column), highest first, with ``rank`` (1 = first; ties keep the input order). The scores are
staged in an Arrow file as always; ranking memory-maps it, sorts one float64 key (8 bytes a
row, plus the order's 8) and writes the rows in that order slice by slice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.data.store import is_dataset, load_info
from churnscale.exceptions import ConfigError
from churnscale.features.preprocessor import column_to_float
from churnscale.value.risk import EXPECTED_LOSS, VALUE, bad_value, expected_losses, first_bad

#: The flag that names the value column, as errors name it.
FLAG = "--value-col"
RANK = "rank"
#: Rows taken and written at a time when ranking.
RANK_SLICE = 65_536


def with_value_column(schema: Schema, model_schema: Schema, name: str) -> Schema:
    """``schema`` (the columns scoring reads) plus the value column ``name``, as numeric."""
    role = next((c.role for c in model_schema.columns if c.name == name), Role.NUMERIC)
    if role is not Role.NUMERIC:
        raise ConfigError(FLAG, expected="a numeric column", received=f"{name} ({role.value})")
    if name in schema.names:
        return schema
    columns = (*schema.columns, ColumnSpec(name, Role.NUMERIC))
    return Schema(columns, positive_label=schema.positive_label, metadata=schema.metadata)


def check_value_source(source: str, name: str) -> None:
    """Refuse a stored dataset without the value column (a file is checked as it is read)."""
    if is_dataset(source) and name not in load_info(Path(source))[0].names:
        missing_value_column(name)


def missing_value_column(name: str) -> None:
    """Raise the error for a value column the data does not have."""
    raise ConfigError(FLAG, expected="a column of the data", received=name)


def value_columns(
    typed: pa.RecordBatch, name: str, outputs: Mapping[str, np.ndarray], id_name: str | None
) -> dict[str, pa.Array]:
    """``value`` and every expected loss of one typed batch (null where the value is)."""
    values = column_to_float(typed.column(name), Role.NUMERIC)
    row = first_bad(values)
    if row is not None:
        where = f"customer {typed.column(id_name)[row]}" if id_name else "a row"
        raise bad_value(float(values[row]), field=name, where=where)
    missing = np.isnan(values)
    mask = missing if missing.any() else None
    columns = {VALUE: pa.array(values, pa.float64(), mask=mask)}
    for loss, amounts in expected_losses(outputs, values).items():
        columns[loss] = pa.array(amounts, pa.float64(), mask=mask)
    return columns


def rank_key(table: pa.Table) -> str:
    """The column ranking sorts by: expected loss when scored with a value, else churn."""
    return EXPECTED_LOSS if EXPECTED_LOSS in table.column_names else "churn_probability"


def rank_order(key: pa.ChunkedArray) -> np.ndarray:
    """Row indices from the highest key down (missing keys last, ties in input order)."""
    values = np.asarray(key.to_numpy(), dtype=np.float64)
    return np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")


def iter_ranked(table: pa.Table) -> Iterator[tuple[pa.RecordBatch, int]]:
    """``table`` in rank order, a slice at a time, each with the rank of its first row."""
    order = rank_order(table.column(rank_key(table)))
    for start in range(0, order.size, RANK_SLICE):
        first = start + 1
        for batch in table.take(order[start : start + RANK_SLICE]).to_batches():
            yield batch, first
            first += batch.num_rows


def with_rank(batch: pa.RecordBatch, first: int) -> pa.RecordBatch:
    """``batch`` plus ``rank``: ``first``, ``first + 1``, ..."""
    ranks = pa.array(np.arange(first, first + batch.num_rows, dtype=np.int64))
    return pa.RecordBatch.from_arrays(
        [*batch.columns, ranks], schema=batch.schema.append(pa.field(RANK, pa.int64()))
    )
