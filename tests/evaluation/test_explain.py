from __future__ import annotations

import numpy as np
import pytest

from churnscale.evaluation.explain import mean_abs_contributions
from churnscale.exceptions import EvaluationError


def test_mean_absolute_value_per_feature_without_the_bias() -> None:
    contributions = np.array([[0.5, -3.0, 9.0], [-1.5, 1.0, 9.0]])  # last column: bias
    summary = mean_abs_contributions(contributions, ["tenure", "plan"])
    assert list(summary) == ["plan", "tenure"]
    assert summary == pytest.approx({"plan": 2.0, "tenure": 1.0})


def test_largest_first_when_there_is_no_bias_column() -> None:
    summary = mean_abs_contributions([[0.1, -3.0], [0.1, 1.0]], ["a", "b"])
    assert list(summary) == ["b", "a"]
    assert summary["b"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (np.zeros((3, 4)), r"contributions: expected rows × 2 features .* got shape \(3, 4\)"),
        (np.zeros(3), r"got shape \(3,\)"),
        (np.zeros((0, 2)), "contributions: expected at least one row"),
    ],
)
def test_wrong_shape_is_named(matrix: np.ndarray, match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        mean_abs_contributions(matrix, ["a", "b"])
