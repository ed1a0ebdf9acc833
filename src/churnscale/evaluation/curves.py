"""ROC and precision-recall curves, thinned to a few hundred points for plots and JSON."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from churnscale.evaluation.validation import FloatArray

#: Most points a stored curve keeps.
MAX_POINTS = 200


@dataclass(frozen=True)
class Curve:
    """A curve as matching lists of x and y values (at most :data:`MAX_POINTS` of each)."""

    x: list[float]
    y: list[float]

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready lists."""
        return {"x": list(self.x), "y": list(self.y)}


def thin_indices(length: int, *, keep: int = MAX_POINTS, always: int | None = None) -> np.ndarray:
    """At most ``keep`` evenly spaced indices of ``range(length)``, first and last included.

    ``always`` names one more index that must survive (for example the best point of a curve).
    """
    if length <= keep:
        return np.arange(length)
    budget = keep - 1 if always is not None else keep
    indices = np.unique(np.linspace(0, length - 1, budget).round().astype(np.int64))
    if always is not None:
        indices = np.union1d(indices, [always])
    return indices


def thinned(x: FloatArray, y: FloatArray) -> Curve:
    """The curve through ``(x, y)`` kept to at most :data:`MAX_POINTS` points."""
    keep = thin_indices(len(x))
    return Curve(x=[float(v) for v in x[keep]], y=[float(v) for v in y[keep]])


def roc(y_true: np.ndarray, y_score: FloatArray) -> tuple[Curve, float]:
    """ROC curve (false positive rate x, true positive rate y) and its area.

    The area is :func:`sklearn.metrics.auc` of the full curve, which is how
    :func:`sklearn.metrics.roc_auc_score` computes it, so the scores are sorted only once.
    """
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=True)
    return thinned(fpr, tpr), float(auc(fpr, tpr))


def precision_recall(y_true: np.ndarray, y_score: FloatArray) -> tuple[Curve, float]:
    """Precision-recall curve (recall x, increasing; precision y) and average precision.

    Average precision is the step-wise sum :func:`sklearn.metrics.average_precision_score`
    computes from the same curve.
    """
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    average = -float(np.sum(np.diff(recall) * precision[:-1]))
    return thinned(recall[::-1], precision[::-1]), average
