"""Each rank's own shard of one side of a split, read straight from the stored row groups.

The rows of a side, in storage order, are numbered 0..n-1 and cut into ``world`` contiguous
ranges; rank ``r`` opens only the row groups that overlap its range. The ranges are disjoint
and cover the side, whatever the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from churnscale.features.preprocessor import Preprocessor
from churnscale.training.plan import SplitPlan


@dataclass
class Shard:
    """One rank's rows of one side: tree-mode float32 features, labels, side positions."""

    features: np.ndarray
    labels: np.ndarray
    start: int
    stop: int
    groups_read: int

    @property
    def rows(self) -> int:
        """Rows in the shard."""
        return self.stop - self.start


def shard_range(total: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share ``[start, stop)`` of ``total`` rows."""
    return total * rank // world, total * (rank + 1) // world


def read_shard(
    plan: SplitPlan, side: int, pre: Preprocessor, *, target: str, rank: int, world: int
) -> Shard:
    """Read and encode rank ``rank``'s rows of ``side`` (only the row groups it needs)."""
    counts = [int((g.sides == side).sum()) for g in plan.groups]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    start, stop = shard_range(int(starts[-1]), rank, world)
    columns = [c.name for c in pre.schema.features] + [target]
    features, labels, groups = [], [], 0
    for group, first, count in zip(plan.groups, starts[:-1], counts, strict=True):
        lo, hi = max(start - first, 0), min(stop - first, count)
        if hi <= lo:
            continue
        table = pq.ParquetFile(group.file).read_row_group(group.index, columns=columns)
        rows = np.flatnonzero(group.sides == side)[lo:hi]
        table = table.take(rows)
        features.append(pre.transform(table).astype(np.float32))
        labels.append(np.asarray(table.column(target).to_numpy(), dtype=np.float32))
        groups += 1
    width = len(pre.features_)
    return Shard(
        np.concatenate(features) if features else np.empty((0, width), np.float32),
        np.concatenate(labels) if labels else np.empty(0, np.float32),
        start,
        stop,
        groups,
    )
