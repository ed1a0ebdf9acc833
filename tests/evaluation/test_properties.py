"""Properties of the evaluation tables that hold for any labels and scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from churnscale.evaluation import Evaluation, evaluate_scores
from churnscale.exceptions import EvaluationError


@st.composite
def labelled_scores(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """1 to 60 rows with both classes; scores on a coarse grid so that ties are common."""
    rows = draw(st.integers(2, 60))
    labels = draw(st.lists(st.integers(0, 1), min_size=rows, max_size=rows))
    labels[0], labels[1] = 0, 1
    scores = draw(st.lists(st.integers(0, 20), min_size=rows, max_size=rows))
    return np.array(labels), np.array(scores) / 20.0


@settings(max_examples=60, deadline=None)
@given(data=labelled_scores(), cost=st.floats(0.0, 20.0), success=st.floats(0.0, 1.0))
def test_tables_add_up_and_best_profit_is_the_maximum(
    data: tuple[np.ndarray, np.ndarray], cost: float, success: float
) -> None:
    y, s = data
    result = evaluate_scores(y, s, contact_cost=cost, retention_value=10.0, success_rate=success)
    assert sum(d.customers for d in result.deciles) == y.size
    assert sum(d.churners for d in result.deciles) == y.sum()
    assert sum(b.count for b in result.calibration) == y.size
    assert 0.0 <= result.ece <= 1.0
    profits = [
        float(np.sum(success * 10.0 * y[s >= t] - cost)) for t in np.unique(s)
    ]  # every distinct threshold, by brute force
    assert result.profit.best_profit == pytest.approx(max([0.0, *profits]))


@settings(max_examples=25, deadline=None)
@given(data=labelled_scores())
def test_to_dict_round_trips_through_json(data: tuple[np.ndarray, np.ndarray]) -> None:
    result = evaluate_scores(*data)
    document = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert Evaluation.from_dict(document) == result


def test_from_dict_rejects_a_foreign_document() -> None:
    with pytest.raises(EvaluationError, match="document: expected a dictionary written by"):
        Evaluation.from_dict({"rows": 3})


@settings(max_examples=40, deadline=None)
@given(data=labelled_scores())
def test_areas_equal_scikit_learn_with_ties(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    result = evaluate_scores(y, s)
    assert result.roc_auc == pytest.approx(roc_auc_score(y, s))
    assert result.pr_auc == pytest.approx(average_precision_score(y, s))
