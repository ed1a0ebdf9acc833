"""How good a set of churn scores is: ranking, probability quality, lift and campaign profit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss

from churnscale.evaluation.calibration import (
    CALIBRATION_BINS,
    CalibrationBin,
    calibration_bins,
    expected_calibration_error,
)
from churnscale.evaluation.curves import Curve, precision_recall, roc
from churnscale.evaluation.gains import DecileRow, decile_table, rank_by_score
from churnscale.evaluation.profit import ProfitCurve, profit_curve
from churnscale.evaluation.validation import (
    check_amounts,
    check_labels,
    check_number,
    check_probabilities,
)
from churnscale.exceptions import EvaluationError

#: Metrics of :meth:`Evaluation.headline`, in display order.
HEADLINE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift", "best_profit")
#: Plain-number fields of :class:`Evaluation`.
SCALARS = ("rows", "positives", *HEADLINE[:-1])


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one evaluation of scores against labels.

    ``pr_auc`` is the average precision (step-wise area under the precision-recall curve);
    ``ece`` is the expected calibration error over :data:`CALIBRATION_BINS` equal-width bins;
    ``top_decile_lift`` is the churn rate of the highest-scored tenth over the overall rate.
    """

    rows: int
    positives: int
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    ece: float
    top_decile_lift: float
    calibration: list[CalibrationBin]
    deciles: list[DecileRow]
    profit: ProfitCurve
    roc_curve: Curve
    pr_curve: Curve

    @property
    def base_rate(self) -> float:
        """Share of rows that churned."""
        return self.positives / self.rows

    def headline(self) -> dict[str, float]:
        """The summary figures: ranking, probability quality, lift and best profit."""
        figures = {name: getattr(self, name) for name in HEADLINE[:-1]}
        return {**figures, "best_profit": self.profit.best_profit}

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready values."""
        return {
            "rows": self.rows,
            "positives": self.positives,
            "base_rate": self.base_rate,
            **self.headline(),
            "calibration_bins": CALIBRATION_BINS,
            "calibration": [b.to_dict() for b in self.calibration],
            "deciles": [d.to_dict() for d in self.deciles],
            "profit": self.profit.to_dict(),
            "roc_curve": self.roc_curve.to_dict(),
            "pr_curve": self.pr_curve.to_dict(),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Evaluation:
        """The evaluation :meth:`to_dict` wrote (for example read back from JSON)."""
        try:
            return cls(
                **{name: document[name] for name in SCALARS},
                calibration=[CalibrationBin(**b) for b in document["calibration"]],
                deciles=[DecileRow(**d) for d in document["deciles"]],
                profit=ProfitCurve(**document["profit"]),
                roc_curve=Curve(**document["roc_curve"]),
                pr_curve=Curve(**document["pr_curve"]),
            )
        except (KeyError, TypeError) as error:
            raise EvaluationError(
                "document",
                expected="a dictionary written by Evaluation.to_dict",
                received=f"{type(error).__name__}: {error}",
            ) from None


def evaluate_scores(
    y_true: Any,
    y_score: Any,
    *,
    contact_cost: float = 1.0,
    retention_value: float = 10.0,
    value: np.ndarray | None = None,
    success_rate: float = 1.0,
) -> Evaluation:
    """Evaluate churn probabilities ``y_score`` against 0/1 labels ``y_true``.

    The profit curve models a retention campaign: contacting a customer costs ``contact_cost``;
    a contacted churner is retained with probability ``success_rate`` and is then worth
    ``retention_value`` (or ``value[i]`` when a per-customer ``value`` array is given, which
    takes precedence); profit at threshold ``t`` is the sum of
    ``success_rate * churned * value - contact_cost`` over customers with score >= ``t``, and the
    best threshold is the one that maximises it (``None`` when contacting nobody is best).

    Raises :class:`~churnscale.exceptions.EvaluationError` naming the argument when lengths
    differ, a label is not 0/1, only one class is present, or a score is not finite in [0, 1].
    """
    labels = check_labels(y_true, name="y_true")
    scores = check_probabilities(y_score, name="y_score", rows=labels.size)
    cost = check_number(contact_cost, name="contact_cost", low=0.0)
    success = check_number(success_rate, name="success_rate", low=0.0, high=1.0)
    if value is None:
        flat = check_number(retention_value, name="retention_value")
        values = np.full(labels.size, flat)
    else:
        flat, values = None, check_amounts(value, name="value", rows=labels.size)
    calibration = calibration_bins(labels, scores)
    order = rank_by_score(scores)
    deciles = decile_table(labels, scores, order=order)
    roc_points, roc_auc = roc(labels, scores)
    pr_points, average_precision = precision_recall(labels, scores)
    return Evaluation(
        rows=int(labels.size),
        positives=int(labels.sum()),
        roc_auc=roc_auc,
        pr_auc=average_precision,
        log_loss=float(log_loss(labels, scores, labels=[0, 1])),
        brier=float(brier_score_loss(labels, scores)),
        ece=expected_calibration_error(calibration),
        top_decile_lift=deciles[0].lift,
        calibration=calibration,
        deciles=deciles,
        profit=profit_curve(
            labels,
            scores,
            contact_cost=cost,
            values=values,
            success_rate=success,
            retention_value=flat,
            order=order,
        ),
        roc_curve=roc_points,
        pr_curve=pr_points,
    )
