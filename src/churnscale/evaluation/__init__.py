"""Evaluation of churn scores: metrics, cross-validation summaries, leakage checks, HTML report."""

from churnscale.evaluation.calibration import CalibrationBin
from churnscale.evaluation.crossval import summarize_folds
from churnscale.evaluation.curves import Curve
from churnscale.evaluation.gains import DecileRow
from churnscale.evaluation.metrics import Evaluation, evaluate_scores
from churnscale.evaluation.profit import ProfitCurve

__all__ = [
    "CalibrationBin",
    "Curve",
    "DecileRow",
    "Evaluation",
    "ProfitCurve",
    "evaluate_scores",
    "summarize_folds",
]
