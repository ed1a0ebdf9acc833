"""Score deciles in bounded memory: a fixed 2^20-bin histogram of [0, 1], mergeable.

Every scored batch is folded into a :class:`ScoreHistogram` (8 MiB whatever the row count);
histograms of partitions add up, so a cluster run and a local run read the same deciles off
the same counts. Edges have a resolution of 2^-20 (about 1e-6).
"""

from __future__ import annotations

import numpy as np

BINS = 1 << 20


class ScoreHistogram:
    """Counts of churn probabilities in ``BINS`` equal bins of [0, 1] (1.0 in its own bin)."""

    def __init__(self) -> None:
        self.counts = np.zeros(BINS + 1, dtype=np.int64)

    def add(self, probabilities: np.ndarray) -> None:
        """Fold in a batch of probabilities."""
        bins = np.clip((probabilities * BINS).astype(np.int64), 0, BINS)
        self.counts += np.bincount(bins, minlength=BINS + 1)

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        """Add another histogram's counts into this one; returns ``self``."""
        self.counts += other.counts
        return self

    @property
    def rows(self) -> int:
        """How many probabilities were folded in."""
        return int(self.counts.sum())

    def edges(self) -> np.ndarray:
        """The nine decile edges (10%, …, 90% quantiles) of the scores seen."""
        return decile_edges(self.counts)


def decile_edges(histogram: np.ndarray) -> np.ndarray:
    """The 10%, 20%, …, 90% score quantiles read off a fixed histogram of [0, 1]."""
    cumulative = np.cumsum(histogram)
    targets = cumulative[-1] * np.arange(1, 10) / 10
    positions = np.searchsorted(cumulative, targets, side="left")
    return np.asarray(positions, dtype=np.float64) / BINS


def deciles(probabilities: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Decile of each score: 1 for the top 10% (most likely to churn) … 10 for the bottom."""
    below = np.searchsorted(edges, probabilities, side="left")
    return (10 - below).astype(np.int8)
