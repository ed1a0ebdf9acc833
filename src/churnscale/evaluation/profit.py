"""Expected profit of a retention campaign that contacts every customer scored above a threshold.

Contacting a customer costs ``contact_cost``. A contacted churner is retained with probability
``success_rate`` and is then worth their retention value (``retention_value``, or a value per
customer). Contacting a customer who would have stayed earns nothing. The profit of threshold
``t`` is the sum, over customers with score >= ``t``, of
``success_rate * churned * value - contact_cost``, computed on the labelled rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from churnscale.evaluation.curves import thin_indices
from churnscale.evaluation.gains import rank_by_score
from churnscale.evaluation.validation import FloatArray


@dataclass(frozen=True)
class ProfitCurve:
    """Profit against threshold (thinned for plots) and the exact best threshold.

    ``thresholds`` run from the highest score down; ``share_contacted[i]`` is the share of
    customers with score >= ``thresholds[i]``. ``best_threshold`` is ``None`` when contacting
    nobody is best (every threshold loses money); ``best_profit`` is then 0.
    """

    thresholds: list[float]
    profit: list[float]
    share_contacted: list[float]
    best_threshold: float | None
    best_profit: float
    best_share_contacted: float
    contact_cost: float
    retention_value: float | None
    success_rate: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def profit_curve(
    y_true: np.ndarray,
    y_score: FloatArray,
    *,
    contact_cost: float,
    values: FloatArray,
    success_rate: float,
    retention_value: float | None = None,
    order: np.ndarray | None = None,
) -> ProfitCurve:
    """Profit of every distinct threshold; ``values`` is the retention value of each customer.

    ``order`` is :func:`~churnscale.evaluation.gains.rank_by_score` of ``y_score`` when the
    caller already has it.
    """
    order = rank_by_score(y_score) if order is None else order
    scores = y_score[order]
    gain = success_rate * y_true[order] * values[order] - contact_cost
    cumulative = np.cumsum(gain)
    # The contact set changes only where the score changes: keep the last row of each tie.
    ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    profit, thresholds = cumulative[ends], scores[ends]
    share = (ends + 1) / scores.size
    best = int(np.argmax(profit))
    found = bool(profit[best] > 0.0)
    keep = thin_indices(ends.size, always=best)
    return ProfitCurve(
        thresholds=[float(v) for v in thresholds[keep]],
        profit=[float(v) for v in profit[keep]],
        share_contacted=[float(v) for v in share[keep]],
        best_threshold=float(thresholds[best]) if found else None,
        best_profit=float(profit[best]) if found else 0.0,
        best_share_contacted=float(share[best]) if found else 0.0,
        contact_cost=contact_cost,
        retention_value=retention_value,
        success_rate=success_rate,
    )
