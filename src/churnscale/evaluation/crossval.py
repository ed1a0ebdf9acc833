"""Summaries of the same metrics over several cross-validation folds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from churnscale.evaluation.metrics import HEADLINE, Evaluation
from churnscale.exceptions import EvaluationError


def summarize_folds(evaluations: Sequence[Evaluation]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (ddof=1; 0 for one fold) of each headline metric."""
    if not evaluations:
        raise EvaluationError("evaluations", expected="at least one fold", received="none")
    summary: dict[str, tuple[float, float]] = {}
    for name in HEADLINE:
        values = np.array([e.headline()[name] for e in evaluations], dtype=np.float64)
        spread = float(values.std(ddof=1)) if values.size > 1 else 0.0
        summary[name] = (float(values.mean()), spread)
    return summary
