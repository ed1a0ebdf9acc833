"""Drift statistics between two binned distributions: PSI, binned KS and chi-squared.

All three take the counts of the same bins (a reference and a current window), so they work
from the histograms stored in a bundle without the training rows.
"""

from __future__ import annotations

import math

import numpy as np

#: Floor of a bin's share in PSI, so an empty bin gives a large but finite term.
PSI_EPSILON = 1e-4


def proportions(counts: np.ndarray) -> np.ndarray:
    """Each bin's share of the total (all zeros when the total is zero)."""
    total = counts.sum()
    return counts / total if total else np.zeros(counts.shape, dtype=np.float64)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index: ``sum((c - r) * ln(c / r))`` over bin shares.

    Shares are floored at :data:`PSI_EPSILON`. Rules of thumb: < 0.1 stable, 0.1-0.2
    moderate, > 0.2 a significant shift.

    >>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    >>> round(psi(np.array([50, 50]), np.array([90, 10])), 3)
    0.879
    """
    r = np.maximum(proportions(reference), PSI_EPSILON)
    c = np.maximum(proportions(current), PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_binned(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value on binned values.

    The statistic is the largest gap between the two empirical CDFs at the bin edges (a lower
    bound of the exact KS statistic); the p-value uses the effective size ``n·m/(n+m)``.
    """
    from scipy import stats  # imported on use: scipy.stats takes a while to import

    n, m = int(reference.sum()), int(current.sum())
    if n == 0 or m == 0:
        return 0.0, 1.0
    gap = np.abs(np.cumsum(reference) / n - np.cumsum(current) / m)
    statistic = float(gap.max())
    effective = n * m / (n + m)
    p_value = float(stats.kstwobign.sf(statistic * math.sqrt(effective)))
    return statistic, min(max(p_value, 0.0), 1.0)


def chi_squared(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity of the two count vectors (bins empty in both dropped)."""
    from scipy import stats

    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)
