from __future__ import annotations

from pathlib import Path

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


def test_contribution_rows_are_a_bounded_seeded_subset_in_storage_order() -> None:
    import pyarrow as pa

    from churnscale.evaluation.assessment import contribution_rows

    table = pa.table({"i": np.arange(25_000)})
    picked = contribution_rows(table, rows=1_000).column("i").to_numpy()
    assert picked.size == 1_000 and np.all(np.diff(picked) > 0)  # distinct, in order
    again = contribution_rows(table, rows=1_000).column("i").to_numpy()
    assert np.array_equal(picked, again)  # seeded: the report's figures repeat
    assert picked.min() < 2_500 and picked.max() > 22_500  # spread, not the first rows
    small = pa.table({"i": np.arange(10)})
    assert contribution_rows(small, rows=1_000).equals(small)


def test_assess_explains_at_most_the_bounded_subset_of_its_sample(
    churn_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real model and a 12,000-row sample: the leakage check sees all of it, the
    contributions (0.4 ms a row with the default model) only CONTRIBUTION_ROWS of it."""
    from churnscale.data.synthetic import generate_table
    from churnscale.evaluation.assessment import CONTRIBUTION_ROWS, assess, contribution_rows
    from churnscale.training.local import TrainParams, train_local

    assert CONTRIBUTION_ROWS < 12_000
    params = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, threads=1)
    result = train_local(churn_dataset, params=params)
    model = result.model
    sample = generate_table(12_000, seed=5)
    explained: list[int] = []
    real = model.contributions

    def spy(matrix: np.ndarray) -> np.ndarray:
        explained.append(matrix.shape[0])
        return real(matrix)

    monkeypatch.setattr(model, "contributions", spy)
    assessment = assess(model, result.y_holdout, result.scores, sample)
    assert explained == [CONTRIBUTION_ROWS]
    subset = model.preprocessor.transform(contribution_rows(sample))
    expected = mean_abs_contributions(real(subset), model.feature_names)
    assert assessment.contributions == pytest.approx(expected)
