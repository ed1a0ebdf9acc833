"""Which stored row goes to which side of a split.

:func:`plan_split` reads only the id, target and time columns of a stored dataset (one pass)
and records, per Parquet row group, the side of every row;
:mod:`churnscale.training.sequence` then reads one side at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.schema import Schema
from churnscale.data.splits import fold_of, holdout_mask, unit_hash
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, SchemaError

TRAIN, VALID, TEST = 0, 1, 2
#: Rows a run never reads: after the held-out date or before the training window of a time
#: split (``UNUSED``), or the outer hold-out of a nested validation (``LEFT_OUT``).
UNUSED = LEFT_OUT = 3
SplitKind = Literal["random", "time"]
#: ``SplitSpec.holdout_date`` value meaning the latest date present in the data.
LATEST = "latest"


@dataclass(frozen=True)
class SplitSpec:
    """How rows are divided: by hashed id (random, stratified in expectation) or by time."""

    kind: SplitKind = "random"
    valid_fraction: float = 0.2
    time_column: str | None = None
    seed: int = 0
    #: Time split by date: hold out exactly the rows at this date (``"latest"``: the last date
    #: present); rows after it are unused. ``None``: hold out the latest ``valid_fraction``.
    holdout_date: str | None = None
    #: Time split by date: rows before this date are unused (a rolling training window).
    train_from: str | None = None
    #: Time split by date: rows after this date and before the held-out one are unused (a gap).
    train_until: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("random", "time"):
            raise ConfigError("--split", expected="random or time", received=self.kind)
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(
                "--valid-fraction", expected="a number in (0, 1)", received=self.valid_fraction
            )
        for name in ("holdout_date", "train_from", "train_until"):
            value = getattr(self, name)
            if value is not None and value != LATEST and _instant(value) is None:
                raise ConfigError(name, expected="an ISO date or 'latest'", received=value)


def _instant(text: str) -> np.datetime64 | None:
    """``text`` as a microsecond instant (``None`` when it is not an ISO date or timestamp)."""
    try:
        value = np.datetime64(text, "us")
    except ValueError:
        return None
    return None if np.isnat(value) else value


def time_split_for(
    schema: Schema, *, time_column: str | None = None, valid_fraction: float = 0.2, seed: int = 0
) -> SplitSpec:
    """The ``--split time`` of a dataset: its latest as-of date held out whole, if it has one.

    A point-in-time dataset (stacked as-of dates) records its ``as_of_column``: the hold-out is
    every row of its latest date and training uses the earlier dates. Given a ``time_column``
    (or without an as-of column) the hold-out is the latest ``valid_fraction`` of the rows.
    """
    if time_column is None and schema.as_of_column is not None:
        return SplitSpec("time", time_column=schema.as_of_column, seed=seed, holdout_date=LATEST)
    column = time_column or schema.time_column
    if column is None:
        raise ConfigError(
            "--time-col",
            expected="a date column for --split time (or an as-of dataset)",
            received=None,
        )
    if column not in schema.names:
        raise SchemaError("--time-col names a column the dataset does not have", missing=[column])
    return SplitSpec("time", valid_fraction, time_column=column, seed=seed)


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


#: A row's packed plan byte: its side in bits 0-1, its label (0/1) in bit 2.
SIDE_BITS, LABEL_SHIFT = 0b11, 2


@dataclass
class RowGroup:
    """One Parquet row group: the side and the label (0/1) of each of its rows, packed in one
    byte a row (``packed``: side in bits 0-1, label in bit 2)."""

    file: Path
    index: int
    packed: np.ndarray

    @classmethod
    def of(cls, file: Path, index: int, sides: np.ndarray, labels: np.ndarray) -> RowGroup:
        """A row group from its rows' sides (TRAIN..UNUSED) and labels (0 or 1)."""
        return cls(file, index, pack(sides, labels))

    @property
    def sides(self) -> np.ndarray:
        """Each row's side (int8)."""
        return (self.packed & SIDE_BITS).astype(np.int8)

    @sides.setter
    def sides(self, sides: np.ndarray) -> None:
        self.packed = pack(sides, self.labels)

    @property
    def labels(self) -> np.ndarray:
        """Each row's label (int8, 0 or 1)."""
        return (self.packed >> LABEL_SHIFT).astype(np.int8)

    def on(self, side: int) -> np.ndarray:
        """True for the rows on ``side``."""
        mask: np.ndarray = (self.packed & SIDE_BITS) == side
        return mask


def pack(sides: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One byte a row: ``side | label << 2``."""
    packed = np.asarray(labels, dtype=np.uint8) << LABEL_SHIFT
    packed |= np.asarray(sides, dtype=np.uint8) & SIDE_BITS
    return packed


class SideLabels:
    """The labels of each side in storage order, as float32 (what LightGBM keeps), built
    from the row groups when asked: the plan holds one byte a row for side and label."""

    def __init__(self, groups: list[RowGroup]) -> None:
        self._groups = groups
        self._given: dict[int, np.ndarray] = {}

    def __getitem__(self, side: int) -> np.ndarray:
        if side in self._given:
            return self._given[side]
        parts = [g.packed[g.on(side)] >> LABEL_SHIFT for g in self._groups]
        labels = np.empty(sum(len(p) for p in parts), dtype=np.float32)
        at = 0
        for part in parts:
            labels[at : at + len(part)] = part
            at += len(part)
        return labels

    def __setitem__(self, side: int, labels: np.ndarray) -> None:
        self._given[side] = labels


@dataclass
class SplitPlan:
    """The side and label of every stored row, by row group; ``labels[side]`` in order."""

    groups: list[RowGroup]
    #: Each side's labels (float32, storage order), built on each access.
    labels: SideLabels = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.labels = SideLabels(self.groups)

    def count(self, side: int) -> int:
        """Rows on ``side``."""
        return int(sum(int(np.count_nonzero(g.on(side))) for g in self.groups))


def row_keys(batch: pa.RecordBatch, schema: Schema, offset: int) -> pa.Array:
    """The split key of each row: its id, or its 0-based position in the dataset."""
    if schema.id is not None:
        return batch.column(schema.id)
    return pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))


@dataclass(frozen=True)
class TimeWindow:
    """A time split: rows in ``[holdout_from, holdout_to]`` are held out, earlier ones train.

    ``holdout_to`` (inclusive) set: later rows and undated rows are :data:`UNUSED`; so are
    rows before ``train_from`` and rows after ``train_until`` that are not held out.
    """

    holdout_from: np.datetime64
    holdout_to: np.datetime64 | None = None
    train_from: np.datetime64 | None = None
    train_until: np.datetime64 | None = None

    def sides(self, times: pa.Array | pa.ChunkedArray, *, holdout: int) -> np.ndarray:
        """TRAIN, ``holdout`` or UNUSED for each of ``times``."""
        values = np.asarray(times.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False))
        sides = np.full(len(values), TRAIN, dtype=np.int8)
        sides[values >= self.holdout_from] = holdout
        if self.holdout_to is not None:
            sides[(values > self.holdout_to) | np.isnat(values)] = UNUSED
        if self.train_from is not None:
            sides[values < self.train_from] = UNUSED
        if self.train_until is not None:
            sides[(values > self.train_until) & (sides == TRAIN)] = UNUSED
        return sides


def distinct_times(dataset: Path, files: list[str], column: str) -> np.ndarray:
    """The sorted distinct instants (datetime64[us]) of ``column``, missing values left out."""
    values = [pq.read_table(dataset / f, columns=[column]).column(column) for f in files]
    times = np.concatenate([v.cast(pa.timestamp("us")).to_numpy() for v in values])
    return np.unique(times[~np.isnat(times)])


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


def time_window(dataset: Path, files: list[str], column: str, split: SplitSpec) -> TimeWindow:
    """The :class:`TimeWindow` of a time split (one pass over ``column``)."""
    if split.holdout_date is None:
        return TimeWindow(time_cutoff(dataset, files, column, split.valid_fraction))
    present = distinct_times(dataset, files, column)
    if split.holdout_date == LATEST:
        held = present[-1] if present.size else None
    else:
        held = _instant(split.holdout_date)
    if held is None or not (present == held).any():
        raise SchemaError(f"no rows at the held-out date {split.holdout_date}", column=column)
    start = _instant(split.train_from) if split.train_from else None
    until = _instant(split.train_until) if split.train_until else None
    earlier = present[present < held]
    if start is not None:
        earlier = earlier[earlier >= start]
    if until is not None:
        earlier = earlier[earlier <= until]
    if earlier.size == 0:
        raise SchemaError(
            f"no rows before the held-out date {np.datetime_as_string(held, 'D')} to train on; "
            "a time split by date needs at least two dates",
            column=column,
        )
    return TimeWindow(held, held, start, until)


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
    window = (
        time_window(dataset, info.files, time_column, split)
        if split.kind == "time" and time_column
        else None
    )
    columns = [c for c in (schema.id, schema.target, time_column) if c]
    groups: list[RowGroup] = []
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
                batch, keys, split, window, time_column, folds, fold, early_stop_fraction
            )
            if exclude is not None:
                sides[exclude.mask(keys)] = LEFT_OUT
            y = np.asarray(batch.column(schema.target).to_numpy(), dtype=np.int8)
            if y.size and (y.min() < 0 or y.max() > 1):  # one bit of the packed plan byte
                raise SchemaError(
                    f"the target must be 0 or 1, found {sorted(set(y.tolist()))}",
                    column=schema.target,
                )
            groups.append(RowGroup.of(dataset / name, index, sides, y))
    return SplitPlan(groups)


def assign_sides(
    batch: pa.Table,
    keys: pa.Array,
    split: SplitSpec,
    window: TimeWindow | None,
    time_column: str | None,
    folds: int | None,
    fold: int,
    early_stop_fraction: float,
) -> np.ndarray:
    """The side of each row of ``batch`` (TRAIN, VALID, TEST or UNUSED), from its key or date."""
    sides = np.full(batch.num_rows, TRAIN, dtype=np.int8)
    if folds is not None:
        sides[fold_of(keys, folds=folds, seed=split.seed) == fold] = TEST
    elif window is not None and time_column is not None:
        holdout = TEST if early_stop_fraction else VALID
        sides = window.sides(batch.column(time_column).combine_chunks(), holdout=holdout)
    else:
        held = unit_hash(keys, seed=split.seed) < split.valid_fraction
        sides[held] = TEST if early_stop_fraction else VALID
    if early_stop_fraction:
        inner = unit_hash(keys, seed=split.seed + 7_919) < early_stop_fraction
        sides[(sides == TRAIN) & inner] = VALID
    return sides
