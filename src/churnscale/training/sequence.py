"""Streamed access to one side of a :class:`~churnscale.training.plan.SplitPlan`.

:class:`SideSequence` serves one side's encoded rows to LightGBM as a ``lightgbm.Sequence``,
one row group at a time, so the raw data is never held in memory; :func:`iter_side_tables`
yields a side's raw rows the same way.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.schema import Schema
from churnscale.features.preprocessor import Preprocessor
from churnscale.training.plan import TRAIN, SplitPlan


@dataclass
class BinSample:
    """The training rows LightGBM bins its features from: positions within the side
    (ascending) and their encoded values (None when there are none)."""

    indices: np.ndarray
    rows: np.ndarray | None


def bin_sample_indices(rows: int, params: dict[str, Any]) -> np.ndarray:
    """The positions LightGBM's Dataset samples for its bins among ``rows`` rows (a function of
    the row count and ``params``: ``bin_construct_sample_cnt``, ``data_random_seed``)."""
    probe = lgb.Dataset(None, params=params)
    return np.asarray(probe._create_sample_indices(total_nrow=rows), dtype=np.int64)


def fit_with_bin_sample(
    plan: SplitPlan, schema: Schema, indices: np.ndarray, **options: Any
) -> tuple[Preprocessor, BinSample]:
    """Fit a Preprocessor on the training side in one streamed pass, keeping the raw rows at
    ``indices`` on the way; they are encoded once it is fitted, so building LightGBM's bins
    needs no second read of the data."""
    pre = Preprocessor(schema, **options)
    columns = [c.name for c in schema.features]
    wanted = np.asarray(indices, dtype=np.int64)
    kept: list[pa.Table] = []
    start = 0
    for table in iter_side_tables(plan, TRAIN, columns):
        lo, hi = np.searchsorted(wanted, [start, start + table.num_rows])
        if hi > lo:
            kept.append(table.take(pa.array(wanted[lo:hi] - start)))
        start += table.num_rows
        for batch in table.to_batches():
            pre.partial_fit(batch)
    pre.finish()
    raw = pa.concat_tables(kept) if kept else None
    kept.clear()
    rows = pre.transform(raw) if raw is not None else None
    del raw  # the raw rows are freed before their pages are handed back
    release_unused_memory()
    return pre, BinSample(wanted, rows)


def release_unused_memory() -> None:
    """Hand the pages that Arrow's allocator and the C heap keep after a pass over the data
    back to the system (~100-150 MiB after reading), so LightGBM's state is not added on top."""
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).malloc_trim(0)


class SideSequence(lgb.Sequence):  # type: ignore[misc]
    """One side of a :class:`SplitPlan` as encoded rows, read one row group at a time."""

    def __init__(self, plan: SplitPlan, side: int, preprocessor: Preprocessor) -> None:
        self.groups = [g for g in plan.groups if g.on(side).any()]
        self.side = side
        self.preprocessor = preprocessor
        counts = [int(np.count_nonzero(g.on(side))) for g in self.groups]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.batch_size = max(counts) if counts else 1
        self.columns = [c.name for c in preprocessor.schema.features]
        self._cached: tuple[int, np.ndarray] | None = None
        self._lo = self._hi = 0  # rows [lo, hi) of this side are the cached group's
        self._sample: list[int] = []  # see expect_sample
        self._sample_rows: np.ndarray | None = None
        self._sample_at = 0

    def __len__(self) -> int:
        return int(self.starts[-1])

    def group_matrix(self, position: int) -> np.ndarray:
        """Encoded rows of this side in group ``position`` (the last one is cached)."""
        if self._cached is not None and self._cached[0] == position:
            return self._cached[1]
        group = self.groups[position]
        table = pq.ParquetFile(group.file).read_row_group(group.index, columns=self.columns)
        mask = group.on(self.side)
        if not mask.all():  # encode this side's rows only (a tenth of them for early stopping)
            table = table.filter(pa.array(mask))
        matrix: np.ndarray = self.preprocessor.transform(table)
        if position == len(self.groups) - 1:  # the last group LightGBM bins: then it boosts
            del table
            release_unused_memory()
        self._cached = (position, matrix)
        self._lo = int(self.starts[position])
        self._hi = self._lo + matrix.shape[0]
        return matrix

    def expect_sample(self, indices: np.ndarray) -> None:
        """Encode just these rows (ascending), ahead of LightGBM's bin sampling, which then
        asks for them one call each. Each row group is still read, but ~200,000 rows are
        encoded instead of the whole side; a row asked out of this order is served as usual.
        (Training that fits its Preprocessor keeps these rows during the fit instead: see
        :func:`fit_with_bin_sample`.)
        """
        wanted = np.asarray(indices, dtype=np.int64)
        cuts = np.searchsorted(wanted, self.starts)
        parts = []
        for position, group in enumerate(self.groups):
            inside = wanted[cuts[position] : cuts[position + 1]] - self.starts[position]
            if inside.size:
                rows = np.flatnonzero(group.on(self.side))[inside]
                file = pq.ParquetFile(group.file)
                table = file.read_row_group(group.index, columns=self.columns)
                parts.append(self.preprocessor.transform(table.take(pa.array(rows))))
        self.use_sample(BinSample(wanted, np.concatenate(parts) if parts else None))

    def use_sample(self, sample: BinSample) -> None:
        """Serve ``sample``'s rows (encoded already) when LightGBM asks for them in order.
        The sequence takes the rows (``sample.rows`` becomes None), so they are freed as soon
        as LightGBM has taken the last of them, whoever still holds ``sample``."""
        self._sample, self._sample_at = sample.indices.tolist(), 0
        self._sample_rows, sample.rows = sample.rows, None

    def __getitem__(self, index: int | slice | list[int]) -> np.ndarray:
        if not isinstance(index, slice | list):
            at = self._sample_at
            if at < len(self._sample) and index == self._sample[at]:
                sampled: np.ndarray = self._sample_rows[at]  # type: ignore[index]
                self._sample_at = at + 1
                if self._sample_at == len(self._sample):  # the sample is taken: free it
                    self._sample, self._sample_rows = [], None
                return sampled
            lo = self._lo  # LightGBM samples 200,000 rows one call each, in order: most land in
            if lo <= index < self._hi:  # the cached group (about 5x faster than the lookup)
                row: np.ndarray = self._cached[1][index - lo]  # type: ignore[index]
                return row
        if isinstance(index, slice):
            start, stop, _ = index.indices(len(self))
            return self._range(start, stop)
        if isinstance(index, list):
            return np.stack([self[i] for i in index])
        if index < 0:
            index += len(self)
        position = int(np.searchsorted(self.starts, index, side="right") - 1)
        found: np.ndarray = self.group_matrix(position)[index - self.starts[position]]
        return found

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
        mask = group.on(side)
        if mask.any():
            table = pq.ParquetFile(group.file).read_row_group(group.index, columns=columns)
            yield table if mask.all() else table.filter(pa.array(mask))  # no copy of a whole group
