"""Score a model on labelled data streamed from any source (``churnscale evaluate``).

Rows are conformed to the model's schema, target included; rows that do not fit are
quarantined with file, line and reason, as in ingest. Only the labels and scores (12 bytes a
row) and a bounded sample of rows are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from churnscale.config import Settings
from churnscale.data.conform import conform
from churnscale.data.quarantine import Quarantine
from churnscale.data.readers import read_chunks
from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.data.store import is_dataset, iter_dataset
from churnscale.evaluation.assessment import SAMPLE_ROWS
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.features.preprocessor import column_to_float
from churnscale.model.contract import ChurnModel


@dataclass
class LabelledScores:
    """Labels, scores, optional per-customer values and a sample of the rows scored."""

    y_true: np.ndarray
    scores: np.ndarray
    value: np.ndarray | None
    sample: pa.Table
    rejected: int
    quarantine: Path


def labelled_batches(
    source: str, schema: Schema, quarantine: Quarantine, settings: Settings
) -> Iterator[pa.RecordBatch]:
    """``source`` conformed to ``schema`` (target required); bad rows go to ``quarantine``."""
    if is_dataset(source):
        start = 1
        for batch in iter_dataset(Path(source), batch_rows=settings.batch_rows):
            lines = np.arange(start, start + batch.num_rows)
            start += batch.num_rows
            typed, rejects = conform(batch, schema, source=source, lines=lines)
            quarantine.add(rejects)
            yield typed
        return
    options = settings.storage_options()
    for chunk in read_chunks(source, batch_rows=settings.batch_rows, storage_options=options):
        quarantine.add(chunk.rejects)
        typed, rejects = conform(chunk.batch, schema, source=chunk.source, lines=chunk.lines)
        quarantine.add(rejects)
        yield typed


def _value_column(schema: Schema, name: str | None) -> tuple[Schema, Role | None]:
    """The schema to read (the model's, plus the value column when the model does not use it:
    any numeric column of the data may hold the value) and the value column's role."""
    if name is None:
        return schema, None
    spec = next((c for c in schema.columns if c.name == name), None)
    if spec is None:
        extra = ColumnSpec(name, Role.NUMERIC)
        return replace(schema, columns=(*schema.columns, extra)), Role.NUMERIC
    if spec.role not in (Role.NUMERIC, Role.BOOLEAN):
        raise ConfigError(
            "--value-col",
            expected="a numeric column",
            received=f"{name} ({spec.role.value})",
        )
    return schema, spec.role


def _read(
    source: str, schema: Schema, quarantine: Quarantine, settings: Settings, value: str | None
) -> Iterator[pa.RecordBatch]:
    """:func:`labelled_batches`, a value column the data lacks named as ``--value-col``."""
    try:
        yield from labelled_batches(source, schema, quarantine, settings)
    except SchemaError as exc:
        if value is not None and value in exc.missing:
            expected = "a column of the data"
            raise ConfigError("--value-col", expected=expected, received=value) from None
        raise


def score_labelled(
    source: str,
    model: ChurnModel,
    *,
    settings: Settings,
    quarantine_path: Path,
    value_column: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LabelledScores:
    """Stream ``source`` through ``model``, keeping labels, scores and a bounded sample."""
    schema = model.preprocessor.schema
    if schema.target is None:
        raise SchemaError("the model's schema has no target column; it cannot be evaluated")
    read, value_role = _value_column(schema, value_column)
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    values: list[np.ndarray] = []
    sample: list[pa.RecordBatch] = []
    kept = 0
    with Quarantine(quarantine_path, max_bad_fraction=settings.max_bad_fraction) as quarantine:
        for batch in _read(source, read, quarantine, settings, value_column):
            if not batch.num_rows:
                continue
            target = batch.column(schema.target).to_numpy(zero_copy_only=False)
            labels.append(np.asarray(target, dtype=np.int8))
            scores.append(model.predict_proba(batch))
            if value_column is not None and value_role is not None:
                values.append(column_to_float(batch.column(value_column), value_role))
            if kept < SAMPLE_ROWS:
                sample.append(batch.slice(0, SAMPLE_ROWS - kept))
                kept += sample[-1].num_rows
            if on_progress is not None:
                on_progress(batch.num_rows)
        rejected = quarantine.count
        quarantine.check(sum(a.size for a in labels) + rejected)
    if not labels:
        raise SchemaError(f"no labelled rows could be read from {source}")
    return LabelledScores(
        np.concatenate(labels),
        np.concatenate(scores),
        np.concatenate(values) if values else None,
        pa.Table.from_batches(sample),
        rejected,
        quarantine_path,
    )
