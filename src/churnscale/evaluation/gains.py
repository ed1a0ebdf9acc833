"""Lift and cumulative gains by decile of the score."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from churnscale.evaluation.validation import FloatArray

#: Number of score groups in the gains table.
DECILES = 10


@dataclass(frozen=True)
class DecileRow:
    """One tenth of the customers, ranked by score from highest (decile 1) to lowest.

    ``lift`` is the decile's churn rate over the overall rate; ``cumulative_gain`` is the share of
    all churners found in this and the higher deciles; ``cumulative_lift`` is the churn rate of
    this and the higher deciles over the overall rate.
    """

    decile: int
    customers: int
    churners: int
    rate: float
    lift: float
    cumulative_customers: int
    cumulative_churners: int
    cumulative_gain: float
    cumulative_lift: float
    min_score: float
    max_score: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready fields."""
        return asdict(self)


def rank_by_score(y_score: FloatArray) -> np.ndarray:
    """Row order from highest to lowest score; ties keep their input order (stable)."""
    return np.argsort(-y_score, kind="stable")


def decile_table(
    y_true: np.ndarray,
    y_score: FloatArray,
    *,
    groups: int = DECILES,
    order: np.ndarray | None = None,
) -> list[DecileRow]:
    """Gains table: ``groups`` groups of (nearly) equal size, fewer if there are fewer rows.

    ``order`` is :func:`rank_by_score` of ``y_score`` when the caller already has it.
    """
    order = rank_by_score(y_score) if order is None else order
    labels, scores = y_true[order], y_score[order]
    base_rate = float(labels.mean())
    total_churners = int(labels.sum())
    rows: list[DecileRow] = []
    cumulative_customers = cumulative_churners = 0
    for number, part in enumerate(np.array_split(np.arange(labels.size), min(groups, labels.size))):
        churners = int(labels[part].sum())
        cumulative_customers += part.size
        cumulative_churners += churners
        rate = churners / part.size
        cumulative_rate = cumulative_churners / cumulative_customers
        rows.append(
            DecileRow(
                decile=number + 1,
                customers=int(part.size),
                churners=churners,
                rate=rate,
                lift=rate / base_rate,
                cumulative_customers=cumulative_customers,
                cumulative_churners=cumulative_churners,
                cumulative_gain=cumulative_churners / total_churners,
                cumulative_lift=cumulative_rate / base_rate,
                min_score=float(scores[part].min()),
                max_score=float(scores[part].max()),
            )
        )
    return rows
