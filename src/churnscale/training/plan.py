"""Which stored row goes to which side of a split, and streamed access to one side.

:func:`plan_split` reads only the id, target and time columns of a stored dataset (one pass)
and records, per Parquet row group, the side of every row. :class:`SideSequence` then serves
one side's encoded rows to LightGBM as a ``lightgbm.Sequence``, one row group at a time, so
the raw data is never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.schema import Schema
from churnscale.data.splits import fold_of, holdout_mask, time_holdout_mask, unit_hash
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.features.preprocessor import Preprocessor

TRAIN, VALID, TEST = 0, 1, 2
#: The side of rows a run never sees: the outer hold-out of a nested validation.
LEFT_OUT = 3
SplitKind = Literal["random", "time"]


@dataclass(frozen=True)
class SplitSpec:
    """How rows are divided: by hashed id (random, stratified in expectation) or by time."""

    kind: SplitKind = "random"
    valid_fraction: float = 0.2
    time_column: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("random", "time"):
            raise ConfigError("--split", expected="random or time", received=self.kind)
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(
                "--valid-fraction", expected="a number in (0, 1)", received=self.valid_fraction
            )


@dataclass(frozen=True)
class Exclusion:
    """Rows a run must never see (nested validation): fold ``fold`` of ``folds`` hashed folds,
    or, with ``folds`` None, the hashed ``fraction`` hold-out of a random split, both by ``seed``.
    """

    seed: int = 0
    fraction: float = 0.2
    folds: int | None = None
    fold: int = 0

    @classmethod
    def holdout_of(cls, split: SplitSpec) -> Exclusion:
        """The hold-out that ``train_local(split=split)`` (no folds) scores its model on."""
        if split.kind != "random":
            raise ConfigError(
                "--split", expected="random for nested validation", received=split.kind
            )
        return cls(seed=split.seed, fraction=split.valid_fraction)

    def mask(self, keys: pa.Array) -> np.ndarray:
        """True for the rows of ``keys`` that are left out."""
        if self.folds is not None:
            return np.asarray(fold_of(keys, folds=self.folds, seed=self.seed) == self.fold)
        return holdout_mask(keys, fraction=self.fraction, seed=self.seed)


@dataclass
class RowGroup:
    """One Parquet row group and the side of each of its rows."""

    file: Path
    index: int
    sides: np.ndarray


@dataclass
class SplitPlan:
    """The sides of every stored row, with the labels of each side in storage order."""

    groups: list[RowGroup]
    labels: dict[int, np.ndarray]

    def count(self, side: int) -> int:
        """Rows on ``side``."""
        return int(sum(int((g.sides == side).sum()) for g in self.groups))


def row_keys(batch: pa.RecordBatch, schema: Schema, offset: int) -> pa.Array:
    """The split key of each row: its id, or its 0-based position in the dataset."""
    if schema.id is not None:
        return batch.column(schema.id)
    return pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))


def time_cutoff(dataset: Path, files: list[str], column: str, fraction: float) -> np.datetime64:
    """The first date of the latest ``fraction`` of the rows (the out-of-time hold-out)."""
    values = [pq.read_table(dataset / f, columns=[column]).column(column) for f in files]
    times = np.concatenate([v.cast(pa.timestamp("us")).to_numpy() for v in values])
    present = times[~np.isnat(times)].astype(np.int64)
    if np.unique(present).size < 2:
        raise SchemaError("needs at least two distinct dates for a time split", column=column)
    # The latest dates holding about ``fraction`` of the rows; never every row.
    cutoff = max(np.quantile(present, 1.0 - fraction, method="higher"), present.min() + 1)
    return np.datetime64(int(cutoff), "us")


def plan_split(
    dataset: Path,
    schema: Schema,
    split: SplitSpec,
    *,
    folds: int | None = None,
    fold: int = 0,
    early_stop_fraction: float = 0.0,
    exclude: Exclusion | None = None,
) -> SplitPlan:
    """Assign every row to TRAIN, VALID or TEST.

    Without ``folds``: VALID is the hold-out (hashed ids, or the latest dates for a time
    split). With ``folds``: TEST is fold ``fold``. Either way ``early_stop_fraction`` of the
    training rows move to VALID for early stopping when the hold-out is TEST. Rows that
    ``exclude`` names are LEFT_OUT of every side (their split seed must differ from ``split``'s).
    """
    if schema.target is None:
        raise SchemaError("the dataset has no target column; ingest it with --target")
    _, info = load_info(dataset)
    time_column = split.time_column or schema.as_of_column or schema.time_column
    if split.kind == "time" and time_column is None:
        raise ConfigError("--time-col", expected="a date column for --split time", received=None)
    cutoff = (
        time_cutoff(dataset, info.files, time_column, split.valid_fraction)
        if split.kind == "time" and time_column
        else None
    )
    columns = [c for c in (schema.id, schema.target, time_column) if c]
    groups: list[RowGroup] = []
    labels: dict[int, list[np.ndarray]] = {TRAIN: [], VALID: [], TEST: []}
    offset = 0
    for name in info.files:
        parquet = pq.ParquetFile(dataset / name)
        for index in range(parquet.num_row_groups):
            batch = parquet.read_row_group(index, columns=columns).combine_chunks()
            keys = (
                row_keys(batch.to_batches()[0], schema, offset) if batch.num_rows else pa.array([])
            )
            offset += batch.num_rows
            sides = assign_sides(
                batch, keys, split, cutoff, time_column, folds, fold, early_stop_fraction
            )
            if exclude is not None:
                sides[exclude.mask(keys)] = LEFT_OUT
            # float32: LightGBM keeps labels as float32, so this needs no converted copy
            y = np.asarray(batch.column(schema.target).to_numpy(), dtype=np.float32)
            for side in labels:
                labels[side].append(y[sides == side])
            groups.append(RowGroup(dataset / name, index, sides))
    return SplitPlan(
        groups, {s: np.concatenate(v) if v else np.empty(0) for s, v in labels.items()}
    )


def assign_sides(
    batch: pa.Table,
    keys: pa.Array,
    split: SplitSpec,
    cutoff: np.datetime64 | None,
    time_column: str | None,
    folds: int | None,
    fold: int,
    early_stop_fraction: float,
) -> np.ndarray:
    """The side of each row of ``batch`` (TRAIN, VALID or TEST), from its key or date."""
    sides = np.full(batch.num_rows, TRAIN, dtype=np.int8)
    if folds is not None:
        sides[fold_of(keys, folds=folds, seed=split.seed) == fold] = TEST
    elif cutoff is not None and time_column is not None:
        held = time_holdout_mask(batch.column(time_column).combine_chunks(), cutoff=cutoff)
        sides[held] = TEST if early_stop_fraction else VALID
    else:
        held = unit_hash(keys, seed=split.seed) < split.valid_fraction
        sides[held] = TEST if early_stop_fraction else VALID
    if early_stop_fraction:
        inner = unit_hash(keys, seed=split.seed + 7_919) < early_stop_fraction
        sides[(sides == TRAIN) & inner] = VALID
    return sides


class SideSequence(lgb.Sequence):  # type: ignore[misc]
    """One side of a :class:`SplitPlan` as encoded rows, read one row group at a time."""

    def __init__(self, plan: SplitPlan, side: int, preprocessor: Preprocessor) -> None:
        self.groups = [g for g in plan.groups if (g.sides == side).any()]
        self.side = side
        self.preprocessor = preprocessor
        counts = [int((g.sides == side).sum()) for g in self.groups]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.batch_size = max(counts) if counts else 1
        self.columns = [c.name for c in preprocessor.schema.features]
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def group_matrix(self, position: int) -> np.ndarray:
        """Encoded rows of this side in group ``position`` (the last one is cached)."""
        if self._cached is not None and self._cached[0] == position:
            return self._cached[1]
        group = self.groups[position]
        table = pq.ParquetFile(group.file).read_row_group(group.index, columns=self.columns)
        matrix: np.ndarray = self.preprocessor.transform(table)[group.sides == self.side]
        self._cached = (position, matrix)
        return matrix

    def __getitem__(self, index: int | slice | list[int]) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, _ = index.indices(len(self))
            return self._range(start, stop)
        if isinstance(index, list):
            return np.stack([self[i] for i in index])
        if index < 0:
            index += len(self)
        position = int(np.searchsorted(self.starts, index, side="right") - 1)
        row: np.ndarray = self.group_matrix(position)[index - self.starts[position]]
        return row

    def _range(self, start: int, stop: int) -> np.ndarray:
        parts = []
        first = int(np.searchsorted(self.starts, start, side="right") - 1)
        position = first
        while position < len(self.groups) and self.starts[position] < stop:
            matrix = self.group_matrix(position)
            lo = max(start - self.starts[position], 0)
            hi = min(stop - self.starts[position], matrix.shape[0])
            parts.append(matrix[lo:hi])
            position += 1
        width = len(self.columns)
        return np.concatenate(parts) if parts else np.empty((0, width))

    def iter_matrices(self) -> Iterator[np.ndarray]:
        """Every group's encoded rows, in order (for scoring a side in bounded memory)."""
        for position in range(len(self.groups)):
            yield self.group_matrix(position)


def iter_side_tables(plan: SplitPlan, side: int, columns: list[str]) -> Iterator[pa.Table]:
    """Raw ``columns`` of the rows on ``side``, one row group at a time."""
    for group in plan.groups:
        mask = group.sides == side
        if mask.any():
            table = pq.ParquetFile(group.file).read_row_group(group.index, columns=columns)
            yield table.filter(pa.array(mask))
