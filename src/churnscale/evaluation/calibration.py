"""Reliability of predicted probabilities: equal-width bins and expected calibration error."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from churnscale.evaluation.validation import FloatArray

#: Number of equal-width probability bins over [0, 1].
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    """One probability bin: its bounds, mean predicted probability, observed churn rate, rows."""

    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready fields."""
        return asdict(self)


def calibration_bins(
    y_true: np.ndarray, y_score: FloatArray, *, bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Non-empty equal-width bins of the scores (a score of exactly 1 joins the last bin)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((y_score * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=y_score, minlength=bins)
    label_sums = np.bincount(index, weights=y_true, minlength=bins)
    return [
        CalibrationBin(
            lower=float(edges[b]),
            upper=float(edges[b + 1]),
            mean_predicted=float(score_sums[b] / counts[b]),
            observed_rate=float(label_sums[b] / counts[b]),
            count=int(counts[b]),
        )
        for b in range(bins)
        if counts[b] > 0
    ]


def expected_calibration_error(table: list[CalibrationBin]) -> float:
    """Row-weighted mean gap between predicted and observed rate over the bins."""
    rows = sum(b.count for b in table)
    gaps = sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in table)
    return float(gaps / rows)
