"""Evaluation of churn scores: metrics, cross-validation summaries, leakage checks, HTML report.

The names below are imported when first used (PEP 562), so a module that needs only one part
(the service's calibration, say) does not import scikit-learn and matplotlib with the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnscale.evaluation.calibration import CalibrationBin
    from churnscale.evaluation.crossval import summarize_folds
    from churnscale.evaluation.curves import Curve
    from churnscale.evaluation.explain import mean_abs_contributions
    from churnscale.evaluation.gains import DecileRow
    from churnscale.evaluation.leakage import (
        LeakageWarning,
        leakage_warnings,
        single_feature_aucs,
    )
    from churnscale.evaluation.metrics import Evaluation, evaluate_scores
    from churnscale.evaluation.profit import ProfitCurve
    from churnscale.evaluation.report import render_report

_HOMES = {
    "CalibrationBin": "calibration",
    "Curve": "curves",
    "DecileRow": "gains",
    "Evaluation": "metrics",
    "LeakageWarning": "leakage",
    "ProfitCurve": "profit",
    "evaluate_scores": "metrics",
    "leakage_warnings": "leakage",
    "mean_abs_contributions": "explain",
    "render_report": "report",
    "single_feature_aucs": "leakage",
    "summarize_folds": "crossval",
}

__all__ = [
    "CalibrationBin",
    "Curve",
    "DecileRow",
    "Evaluation",
    "LeakageWarning",
    "ProfitCurve",
    "evaluate_scores",
    "leakage_warnings",
    "mean_abs_contributions",
    "render_report",
    "single_feature_aucs",
    "summarize_folds",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
