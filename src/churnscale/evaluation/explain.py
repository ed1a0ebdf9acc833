"""Model-wide summaries of per-customer feature contributions (SHAP-style)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from churnscale.exceptions import EvaluationError


def mean_abs_contributions(contributions: Any, feature_names: Sequence[str]) -> dict[str, float]:
    """Mean |contribution| of each feature over the rows, largest first.

    ``contributions`` is rows × features, or rows × (features + 1) with the bias last, as
    LightGBM's ``predict(..., pred_contrib=True)`` returns it; the bias column is dropped.
    """
    matrix = np.asarray(contributions, dtype=np.float64)
    names = list(feature_names)
    if matrix.ndim != 2 or matrix.shape[1] not in (len(names), len(names) + 1):
        raise EvaluationError(
            "contributions",
            expected=f"rows × {len(names)} features (optionally + 1 bias column)",
            received=f"shape {matrix.shape}",
        )
    if matrix.shape[0] == 0:
        raise EvaluationError("contributions", expected="at least one row", received="no rows")
    means = np.abs(matrix[:, : len(names)]).mean(axis=0)
    return dict(sorted(zip(names, means.tolist(), strict=True), key=lambda item: -item[1]))
