"""Progressive validation: every event is scored before it is learned.

ROC-AUC comes from two score histograms (positives and negatives, 4,096 bins on [0, 1]), so
memory stays bounded on an endless stream and the state fits in a checkpoint; pairs that share
a bin count one half, which moves the AUC by at most the share of such pairs (well under
0.001 on real score spreads). Log loss is a running mean with probabilities clipped to
[1e-15, 1 - 1e-15].
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 4_096
_EPS = 1e-15


class PrequentialMetrics:
    """Running prequential ROC-AUC and log loss."""

    def __init__(self, bins: int = BINS) -> None:
        self.bins = bins
        self.positives_ = np.zeros(bins, dtype=np.int64)
        self.negatives_ = np.zeros(bins, dtype=np.int64)
        self.loss_sum_ = 0.0

    @property
    def count(self) -> int:
        """Events scored so far."""
        return int(self.positives_.sum() + self.negatives_.sum())

    def update(self, y_true: np.ndarray, y_score: np.ndarray) -> None:
        """Fold in labels (0/1) and the scores given before learning them."""
        y = np.asarray(y_true, dtype=bool)
        p = np.clip(np.asarray(y_score, dtype=np.float64), _EPS, 1.0 - _EPS)
        index = np.minimum((p * self.bins).astype(np.int64), self.bins - 1)
        self.positives_ += np.bincount(index[y], minlength=self.bins)
        self.negatives_ += np.bincount(index[~y], minlength=self.bins)
        self.loss_sum_ -= float(np.log(p[y]).sum() + np.log1p(-p[~y]).sum())

    def roc_auc(self) -> float:
        """ROC-AUC of the scores so far (NaN until both classes are seen)."""
        pos, neg = int(self.positives_.sum()), int(self.negatives_.sum())
        if not pos or not neg:
            return float("nan")
        below = np.cumsum(self.negatives_) - self.negatives_
        wins = (self.positives_ * below).sum() + 0.5 * (self.positives_ * self.negatives_).sum()
        return float(wins / (pos * neg))

    def log_loss(self) -> float:
        """Mean log loss so far (NaN before the first event)."""
        count = self.count
        return self.loss_sum_ / count if count else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (for the checkpoint header)."""
        return {
            "bins": self.bins,
            "positives": self.positives_.tolist(),
            "negatives": self.negatives_.tolist(),
            "loss_sum": self.loss_sum_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrequentialMetrics:
        """Inverse of :meth:`to_dict`."""
        metrics = cls(int(data["bins"]))
        metrics.positives_ = np.asarray(data["positives"], dtype=np.int64)
        metrics.negatives_ = np.asarray(data["negatives"], dtype=np.int64)
        metrics.loss_sum_ = float(data["loss_sum"])
        return metrics
