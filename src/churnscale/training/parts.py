"""Work done on the cluster, one stored Parquet row group (a *part*) at a time.

Every part computes the side of its rows with the same hashed split as
:func:`~churnscale.training.plan.plan_split`, so each row lands where local training puts it.
These functions run inside Dask workers; their arguments and results travel between processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import rankdata

from churnscale.data.schema import Schema
from churnscale.data.store import DatasetInfo
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.features.preprocessor import Preprocessor
from churnscale.training.plan import (
    TEST,
    TRAIN,
    UNUSED,
    VALID,
    SplitSpec,
    TimeWindow,
    assign_sides,
    row_keys,
    time_window,
)

SIDES = (TRAIN, VALID, TEST)


@dataclass(frozen=True)
class PartRef:
    """One Parquet row group of a stored dataset and the dataset position of its first row."""

    file: Path
    index: int
    offset: int
    rows: int


@dataclass(frozen=True)
class SideRule:
    """Everything a part needs to put its rows on the same sides as local training."""

    schema: Schema
    split: SplitSpec
    early_stop_fraction: float
    window: TimeWindow | None = None
    time_column: str | None = None
    #: A refit: every row the split uses is on TRAIN (no early-stopping or hold-out rows).
    all_rows: bool = False

    def read(self, part: PartRef, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
        """``columns`` of the part's rows and the side of each row."""
        keys = [c for c in (self.schema.id, self.schema.target, self.time_column) if c]
        wanted = list(dict.fromkeys(columns + keys))
        table = pq.ParquetFile(part.file).read_row_group(part.index, columns=wanted)
        table = table.combine_chunks()
        ids = (
            row_keys(table.to_batches()[0], self.schema, part.offset) if part.rows else pa.array([])
        )
        sides = assign_sides(
            table, ids, self.split, self.window, self.time_column, None, 0, self.early_stop_fraction
        )
        if self.all_rows:
            sides[sides != UNUSED] = TRAIN
        return table, sides

    def labels(self, table: pa.Table) -> np.ndarray:
        """The target column as float32 0/1 (as local training reads it)."""
        assert self.schema.target is not None  # checked by side_rule
        return np.asarray(table.column(self.schema.target).to_numpy(), dtype=np.float32)


def side_rule(
    dataset: Path,
    schema: Schema,
    split: SplitSpec,
    info: DatasetInfo,
    early_stop_fraction: float,
    *,
    all_rows: bool = False,
) -> SideRule:
    """The split of ``dataset``; a time split's cutoff is computed once, here (``all_rows``:
    every row it uses on TRAIN, for a refit)."""
    if schema.target is None:
        raise SchemaError("the dataset has no target column; ingest it with --target")
    column = split.time_column or schema.as_of_column or schema.time_column
    if split.kind == "time" and column is None:
        raise ConfigError("--time-col", expected="a date column for --split time", received=None)
    if split.kind != "time" or column is None:
        return SideRule(schema, split, early_stop_fraction, all_rows=all_rows)
    window = time_window(dataset, info.files, column, split)
    return SideRule(schema, split, early_stop_fraction, window, column, all_rows=all_rows)


def list_parts(dataset: Path, info: DatasetInfo) -> list[PartRef]:
    """Every row group of a stored dataset, read from the Parquet footers only."""
    parts: list[PartRef] = []
    offset = 0
    for name in info.files:
        meta = pq.ParquetFile(dataset / name).metadata
        for index in range(meta.num_row_groups):
            rows = meta.row_group(index).num_rows
            parts.append(PartRef(dataset / name, index, offset, rows))
            offset += rows
    return parts


def fit_part(part: PartRef, rule: SideRule) -> Preprocessor:
    """An unfinished Preprocessor holding the statistics of this part's training rows."""
    pre = Preprocessor(rule.schema)
    columns = [c.name for c in rule.schema.features]
    table, sides = rule.read(part, columns)
    mask = sides == TRAIN
    if mask.any():
        for batch in table.select(columns).filter(pa.array(mask)).to_batches():
            pre.partial_fit(batch)
    return pre


@dataclass
class EncodedPart:
    """A part's TRAIN and VALID rows encoded in tree mode (float32), with row/positive counts."""

    x: dict[int, np.ndarray] = field(default_factory=dict)
    y: dict[int, np.ndarray] = field(default_factory=dict)
    counts: dict[int, tuple[int, int]] = field(default_factory=dict)


def encode_part(part: PartRef, rule: SideRule, pre: Preprocessor) -> EncodedPart:
    """Encode the part once (float32); the hold-out rows are only counted (scored later)."""
    table, sides = rule.read(part, [c.name for c in rule.schema.features])
    labels = rule.labels(table)
    encoded = EncodedPart()
    # float32 halves what lightgbm.dask holds (it keeps each worker's raw matrix while it
    # trains); thresholds fall between float32 values, so float64 inputs split the same way.
    matrix = pre.transform(table).astype(np.float32)
    for side in SIDES:
        mask = sides == side
        encoded.counts[side] = (int(mask.sum()), int(labels[mask].sum()))
        if side != TEST:
            encoded.x[side] = np.ascontiguousarray(matrix[mask])
            encoded.y[side] = labels[mask]
    return encoded


def join_parts(parts: list[EncodedPart], side: int, what: str) -> np.ndarray:
    """One side's encoded matrix (``"x"``) or labels (``"y"``) of ``parts``, in order."""
    return np.concatenate([p.x[side] if what == "x" else p.y[side] for p in parts])


def part_counts(encoded: EncodedPart) -> dict[int, tuple[int, int]]:
    """Rows and positives per side."""
    return encoded.counts


def score_part(
    part: PartRef, rule: SideRule, pre: Preprocessor, model_text: str
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and churn scores of the part's hold-out rows, in storage order."""
    table, sides = rule.read(part, [c.name for c in rule.schema.features])
    mask = sides == TEST
    if not mask.any():
        return np.empty(0), np.empty(0)
    held = table.filter(pa.array(mask))
    booster = lgb.Booster(model_str=model_text)
    scores = np.asarray(booster.predict(pre.transform(held), num_threads=1), dtype=np.float64)
    return rule.labels(held), scores


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC with ties counted as half (rank statistic)."""
    positives = labels > 0.5
    n_pos = int(positives.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
