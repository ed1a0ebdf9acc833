"""What batch scoring reads and computes per batch: typed rows in, a scored table out.

Only the columns the model uses (its id and features) are read. A stored dataset is already
conformed to its schema, so when its columns have the model's roles its batches are used as
they are (no conform work); any other source is conformed, bad rows going to the quarantine.
Categorical columns are read dictionary-encoded where the source allows, so cleaning and
encoding them costs one lookup per distinct value instead of one per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from churnscale.config import Settings
from churnscale.data.conform import conform
from churnscale.data.quarantine import Quarantine
from churnscale.data.readers import read_chunks
from churnscale.data.schema import Role, Schema
from churnscale.data.store import is_dataset, iter_dataset, load_info
from churnscale.model.contract import ChurnModel
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.predictor import Predictor
from churnscale.scoring.value import value_columns, with_value_column

ROW = "row"
PROBABILITY = "churn_probability"
DECILE = "decile"
REASONS = "reasons"


def scoring_schema(model: ChurnModel, *, value_column: str | None = None) -> Schema:
    """The columns scoring needs from a source: the model's id (if any) and its features,
    and the value column when one is named (:mod:`churnscale.scoring.value`)."""
    schema = model.preprocessor.schema
    used = set(model.feature_names) | {schema.id}
    needed = Schema(
        tuple(c for c in schema.columns if c.name in used),
        positive_label=schema.positive_label,
        metadata=schema.metadata,
    )
    return needed if value_column is None else with_value_column(needed, schema, value_column)


def categorical_names(schema: Schema) -> list[str]:
    """The categorical columns of ``schema`` (read dictionary-encoded)."""
    return [c.name for c in schema.columns if c.role is Role.CATEGORICAL]


def typed_batches(
    source: str, schema: Schema, quarantine: Quarantine, settings: Settings
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Batches of ``source`` typed to ``schema``, each with the number of source rows it used."""
    if is_dataset(source) and stored_is_conformed(Path(source), schema):
        for batch in iter_dataset(
            Path(source),
            columns=schema.names,
            batch_rows=settings.batch_rows,
            read_dictionary=categorical_names(schema),
        ):
            yield batch, batch.num_rows
        return
    if is_dataset(source):
        yield from _conformed_dataset(source, schema, quarantine, settings)
        return
    chunks = read_chunks(
        source,
        batch_rows=settings.batch_rows,
        storage_options=settings.storage_options(),
        read_dictionary=categorical_names(schema),
    )
    for chunk in chunks:
        quarantine.add(chunk.rejects)
        typed, rejects = conform(
            chunk.batch,
            schema,
            source=chunk.source,
            lines=chunk.lines,
            require_target=False,
            keep_dictionary=True,
        )
        quarantine.add(rejects)
        yield typed, chunk.batch.num_rows + len(chunk.rejects)


def stored_is_conformed(path: Path, schema: Schema) -> bool:
    """Whether the stored dataset holds every column of ``schema`` with the same role."""
    stored = {c.name: c.role for c in load_info(path)[0].columns}
    return all(stored.get(c.name) is c.role for c in schema.columns)


def _conformed_dataset(
    source: str, schema: Schema, quarantine: Quarantine, settings: Settings
) -> Iterator[tuple[pa.RecordBatch, int]]:
    start = 1
    for batch in iter_dataset(Path(source), columns=schema.names, batch_rows=settings.batch_rows):
        lines = np.arange(start, start + batch.num_rows)
        start += batch.num_rows
        typed, rejects = conform(
            batch, schema, source=source, lines=lines, require_target=False, keep_dictionary=True
        )
        quarantine.add(rejects)
        yield typed, batch.num_rows


def encode(model: ChurnModel, typed: pa.RecordBatch) -> np.ndarray:
    """The tree-mode float64 matrix of a typed batch."""
    return model.preprocessor.transform(typed)


def scored_table(
    model: LightGBMModel,
    typed: pa.RecordBatch,
    matrix: np.ndarray,
    probabilities: np.ndarray,
    *,
    reasons: bool,
    value_column: str | None = None,
) -> pa.Table:
    """The output columns of one batch: id (or row number), probability, the model's other
    outputs, the value and expected losses with ``value_column``, optional reasons."""
    id_name = model.preprocessor.schema.id
    ident = typed.column(id_name) if id_name else pa.array(np.arange(typed.num_rows), pa.int64())
    columns: dict[str, pa.Array] = {
        id_name or ROW: ident,
        PROBABILITY: pa.array(probabilities, pa.float64()),
    }
    outputs = {PROBABILITY: probabilities}
    if len(model.outputs) > 1:  # e.g. a survival model's curve at its horizons
        outputs = {**model.outputs_of_matrix(matrix), PROBABILITY: probabilities}
        for name in model.outputs[1:]:
            columns[name] = pa.array(outputs[name], pa.float64())
    if value_column is not None:
        columns.update(value_columns(typed, value_column, outputs, id_name))
    if reasons:
        columns[REASONS] = reason_column(model, matrix)
    return pa.table(columns)


def predict(predictor: Predictor, matrix: np.ndarray, *, threads: int) -> np.ndarray:
    """Probabilities of an encoded matrix with the shared predictor."""
    return predictor.predict_matrix(matrix, threads=threads)


def reason_column(model: LightGBMModel, matrix: np.ndarray) -> pa.Array:
    """Top-3 reasons of every row: a list of ``{feature, contribution}``."""
    contributions = model.contributions(matrix)[:, :-1]
    top = np.argsort(-np.abs(contributions), axis=1)[:, :3]
    names = np.asarray(model.feature_names, dtype=object)
    values = np.take_along_axis(contributions, top, axis=1).round(6)
    reason = pa.struct([("feature", pa.string()), ("contribution", pa.float64())])
    flat = pa.StructArray.from_arrays(
        [pa.array(names[top].ravel(), pa.string()), pa.array(values.ravel(), pa.float64())],
        fields=list(reason),
    )
    offsets = pa.array(np.arange(0, len(flat) + 1, top.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)
