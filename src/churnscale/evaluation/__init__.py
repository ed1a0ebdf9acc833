"""Evaluation of churn scores: metrics, cross-validation summaries, leakage checks, HTML report."""

from churnscale.evaluation.calibration import CalibrationBin
from churnscale.evaluation.crossval import summarize_folds
from churnscale.evaluation.curves import Curve
from churnscale.evaluation.explain import mean_abs_contributions
from churnscale.evaluation.gains import DecileRow
from churnscale.evaluation.leakage import LeakageWarning, leakage_warnings, single_feature_aucs
from churnscale.evaluation.metrics import Evaluation, evaluate_scores
from churnscale.evaluation.profit import ProfitCurve
from churnscale.evaluation.report import render_report

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
