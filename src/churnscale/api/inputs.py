"""What the Python API takes: DataFrames of pandas or polars, pyarrow Tables, and paths.

Every table-shaped input becomes one :class:`pyarrow.Table` here (pandas and polars convert
without copying where Arrow can), so the rest of churnscale sees what the CLI's readers give
it. Anything else is refused with :class:`~churnscale.exceptions.InputTypeError` naming the
argument and the type received. pandas and polars are imported only when their objects are
passed (neither is needed to use the API on Arrow tables or paths).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pyarrow as pa

from churnscale.data.conform import conform
from churnscale.data.schema import Role, Schema, SchemaHints
from churnscale.exceptions import InputTypeError, SchemaError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from churnscale.config import Settings

#: A table of customers: a pandas or polars DataFrame, or a pyarrow Table or RecordBatch.
Frame: TypeAlias = "pd.DataFrame | pl.DataFrame | pa.Table | pa.RecordBatch"
#: Data given to ``train``, ``ingest``, ``score`` or ``evaluate``: a file, directory, glob,
#: ``s3://`` path or stored dataset, or a table in memory.
Data: TypeAlias = "str | os.PathLike[str] | Frame"
#: Labels: a numpy array, a pandas or polars Series, or a pyarrow Array.
Labels: TypeAlias = "np.ndarray | pd.Series | pl.Series | pa.Array | pa.ChunkedArray"

FRAMES = "a pandas or polars DataFrame, or a pyarrow Table or RecordBatch"


def _kind(value: object) -> tuple[str, str]:
    cls = type(value)
    return cls.__module__.split(".")[0], cls.__name__


def is_frame(value: object) -> bool:
    """Whether ``value`` is a table the API takes in memory."""
    return isinstance(value, pa.Table | pa.RecordBatch) or _kind(value) in (
        ("pandas", "DataFrame"),
        ("polars", "DataFrame"),
    )


def to_arrow(X: object, *, argument: str = "X") -> pa.Table:
    """``X`` as a pyarrow Table (pandas without its index); else :class:`InputTypeError`."""
    if isinstance(X, pa.Table):
        return X
    if isinstance(X, pa.RecordBatch):
        return pa.Table.from_batches([X])
    kind = _kind(X)
    if kind == ("pandas", "DataFrame"):
        return _from_pandas(X)  # type: ignore[arg-type]
    if kind == ("polars", "DataFrame"):
        return X.to_arrow()  # type: ignore[attr-defined, no-any-return]
    hint = " (a numpy array has no column names: use a DataFrame)" if _is_array(X) else ""
    raise InputTypeError(argument, expected=FRAMES + hint, received=X)


def _from_pandas(frame: pd.DataFrame) -> pa.Table:
    """A pandas frame as Arrow; an object column that mixes types (numbers and text) is read
    as text, so that conforming names the value that does not fit."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = [c for c in frame.columns if frame[c].dtype == object]
        text = {c: frame[c].map(lambda v: None if v is None or v != v else str(v)) for c in mixed}
        return pa.Table.from_pandas(frame.assign(**text), preserve_index=False)


def _is_array(value: object) -> bool:
    return isinstance(value, np.ndarray)


def to_labels(y: object, *, argument: str = "y") -> pa.Array:
    """``y`` as one pyarrow Array; else :class:`InputTypeError`."""
    if isinstance(y, pa.ChunkedArray):
        return y.combine_chunks()
    if isinstance(y, pa.Array):
        return y
    if isinstance(y, np.ndarray) and y.ndim == 1:
        return pa.array(y)
    if _kind(y) in (("pandas", "Series"), ("polars", "Series")):
        return pa.array(y.to_numpy())  # type: ignore[attr-defined]
    expected = "a 1-d numpy array, a pandas or polars Series, or a pyarrow Array"
    raise InputTypeError(argument, expected=expected, received=y)


def is_path(value: object) -> bool:
    """Whether ``value`` names data by path (a string or an ``os.PathLike``)."""
    return isinstance(value, str | os.PathLike)


def conformed(table: pa.Table, schema: Schema, *, argument: str = "X") -> pa.Table:
    """``table``'s columns of ``schema`` in its types (extra columns are ignored); a value that
    cannot be read is a :class:`SchemaError` naming its row (from 0), column and value."""
    lines = np.arange(table.num_rows)
    batches = table.combine_chunks().to_batches() or [
        pa.RecordBatch.from_pylist([], schema=table.schema)
    ]
    typed: list[pa.RecordBatch] = []
    start = 0
    for batch in batches:
        require = schema.target is not None
        done, rejects = conform(
            batch, schema, source=argument, lines=lines[start:], require_target=require
        )
        if rejects:
            bad = rejects[0]
            raise SchemaError(
                f"{argument} row {bad.line}: {bad.reason} (got {bad.value!r})", column=bad.column
            )
        typed.append(done)
        start += batch.num_rows
    return pa.Table.from_batches(typed)


def feature_schema(schema: Schema, *, with_target: bool = False) -> Schema:
    """``schema``'s feature columns (and its target): what predicting (or evaluating) reads."""
    keep = {c.name for c in schema.features}
    columns = tuple(
        c for c in schema.columns if c.name in keep or (with_target and c.role is Role.TARGET)
    )
    return Schema(columns, positive_label=schema.positive_label, metadata=schema.metadata)


def schema_inputs(
    *,
    target: str | None = None,
    id: str | None = None,
    positive_label: str | None = None,
    drop: Sequence[str] = (),
    schema: Schema | str | os.PathLike[str] | None = None,
    time_column: str | None = None,
) -> tuple[SchemaHints, Schema | None]:
    """Hints from the arguments, or a full schema (a :class:`Schema`, or a YAML or JSON file
    holding one): how a source is read."""
    if isinstance(schema, Schema):
        return SchemaHints(), schema
    if schema is not None:
        return SchemaHints(), Schema.load(Path(schema))
    hints = SchemaHints(
        target=target,
        id=id,
        positive_label=positive_label,
        drop=tuple(drop),
        time_column=time_column,
    )
    return hints, None


def bundle_out(
    stack: ExitStack, out: str | os.PathLike[str] | None, *, register: bool, settings: Settings
) -> Path | None:
    """Where a training job keeps its bundle: ``out``, or (neither kept nor registered) a
    scratch directory under the churnscale home that ``stack`` removes; None when the model
    is registered only."""
    if out is not None:
        return Path(out)
    if register:
        return None
    scratch = stack.enter_context(tempfile.TemporaryDirectory(dir=settings.home))
    return Path(scratch) / "bundle"
