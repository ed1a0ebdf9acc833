from __future__ import annotations

import numpy as np
import pytest

from churnscale.evaluation import evaluate_scores, summarize_folds
from churnscale.evaluation.metrics import HEADLINE, Evaluation
from churnscale.exceptions import EvaluationError


def fold(rng: np.random.Generator, noise: float) -> Evaluation:
    p = rng.random(2_000)
    y = (rng.random(p.size) < p).astype(np.int8)
    return evaluate_scores(y, np.clip(p + rng.normal(0.0, noise, p.size), 0.0, 1.0))


def test_mean_and_sample_std_of_each_headline_metric(seed: int) -> None:
    rng = np.random.default_rng(seed)
    folds = [fold(rng, noise) for noise in (0.05, 0.2, 0.4)]
    summary = summarize_folds(folds)
    assert list(summary) == list(HEADLINE)
    for name, (mean, std) in summary.items():
        values = [f.headline()[name] for f in folds]
        assert mean == pytest.approx(np.mean(values))
        assert std == pytest.approx(np.std(values, ddof=1))
    assert summary["roc_auc"][1] > 0  # the folds differ, so the spread is not zero


def test_one_fold_has_zero_spread(seed: int) -> None:
    single = fold(np.random.default_rng(seed), 0.1)
    summary = summarize_folds([single])
    assert summary["brier"] == (single.brier, 0.0)


def test_no_folds_is_an_error() -> None:
    with pytest.raises(EvaluationError, match="evaluations: expected at least one fold"):
        summarize_folds([])
