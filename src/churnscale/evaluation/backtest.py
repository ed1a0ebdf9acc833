"""What an out-of-time backtest found: one :class:`BacktestStep` per as-of date, and the whole.

Produced by :func:`churnscale.training.backtest.run_backtest`; rendered by
:mod:`churnscale.evaluation.backtest_report` and ``churnscale backtest``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BacktestStep:
    """One as-of date scored by a model trained on earlier dates (``skipped`` says why not)."""

    as_of: str
    rows: int
    churn_rate: float
    train_dates: tuple[str, ...]
    train_rows: int = 0
    roc_auc: float | None = None
    pr_auc: float | None = None
    top_decile_lift: float | None = None
    best_iteration: int | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**asdict(self), "train_dates": list(self.train_dates)}


@dataclass(frozen=True)
class Backtest:
    """Every step of a backtest, with its settings."""

    dataset: str
    as_of_column: str
    window: int | None
    gap_days: int
    steps: list[BacktestStep]
    params: dict[str, Any]

    def mean(self, metric: str) -> float | None:
        """Mean of ``metric`` over the scored steps."""
        values = [getattr(s, metric) for s in self.steps if s.skipped is None]
        return float(np.mean(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document: settings, one entry per step, and the means."""
        return {
            "dataset": self.dataset,
            "as_of_column": self.as_of_column,
            "window": self.window,
            "gap_days": self.gap_days,
            "params": self.params,
            "steps": [s.to_dict() for s in self.steps],
            "mean": {m: self.mean(m) for m in ("roc_auc", "pr_auc", "top_decile_lift")},
        }
