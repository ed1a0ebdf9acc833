from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from churnscale.evaluation import evaluate_scores
from churnscale.evaluation.curves import MAX_POINTS
from churnscale.exceptions import EvaluationError


def noisy_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a probability and scores that are a noisy view of it."""
    p = rng.beta(2.0, 5.0, n)
    y = (rng.random(n) < p).astype(np.int64)
    return y, np.clip(p + rng.normal(0.0, 0.1, n), 0.001, 0.999)


def test_hand_computed_case() -> None:
    result = evaluate_scores([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert result.rows == 4 and result.positives == 2
    assert result.roc_auc == pytest.approx(0.75)  # 3 of 4 churner/stayer pairs in order
    assert result.pr_auc == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert result.brier == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    expected_loss = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert result.log_loss == pytest.approx(expected_loss)


def test_metrics_match_scikit_learn(seed: int) -> None:
    y, s = noisy_scores(np.random.default_rng(seed), 5_000)
    result = evaluate_scores(y, s)
    assert result.roc_auc == pytest.approx(roc_auc_score(y, s))
    assert result.pr_auc == pytest.approx(average_precision_score(y, s))
    assert result.log_loss == pytest.approx(log_loss(y, s))
    assert result.brier == pytest.approx(brier_score_loss(y, s))


def test_deciles_and_gains_add_up_to_totals(seed: int) -> None:
    y, s = noisy_scores(np.random.default_rng(seed), 1_003)
    result = evaluate_scores(y, s)
    deciles = result.deciles
    assert [d.decile for d in deciles] == list(range(1, 11))
    assert sum(d.customers for d in deciles) == result.rows == deciles[-1].cumulative_customers
    assert sum(d.churners for d in deciles) == result.positives == deciles[-1].cumulative_churners
    assert deciles[-1].cumulative_gain == pytest.approx(1.0)
    assert deciles[-1].cumulative_lift == pytest.approx(1.0)
    assert max(d.customers for d in deciles) - min(d.customers for d in deciles) <= 1
    gains = [d.cumulative_gain for d in deciles]
    assert gains == sorted(gains)
    assert all(a.min_score >= b.max_score for a, b in itertools.pairwise(deciles))
    weighted_lift = sum(d.lift * d.customers for d in deciles) / result.rows
    assert weighted_lift == pytest.approx(1.0)


def test_top_decile_lift_by_hand() -> None:
    # 20 customers, 5 churners (base rate 0.25); the two highest scores are both churners.
    y = np.array([1, 1] + [0] * 15 + [1, 1, 1])
    s = np.linspace(0.95, 0.05, 20)
    result = evaluate_scores(y, s)
    assert result.deciles[0].customers == 2
    assert result.top_decile_lift == pytest.approx(1.0 / 0.25)
    assert result.deciles[0].cumulative_gain == pytest.approx(2 / 5)


def test_fewer_rows_than_deciles_gives_one_group_per_row() -> None:
    result = evaluate_scores([1, 0, 1, 0], [0.9, 0.7, 0.4, 0.2])
    assert [d.customers for d in result.deciles] == [1, 1, 1, 1]
    assert result.top_decile_lift == pytest.approx(2.0)


def test_ece_by_hand() -> None:
    result = evaluate_scores([0, 1, 1, 1], [0.05, 0.05, 0.95, 0.95])
    assert [b.count for b in result.calibration] == [2, 2]
    assert [(b.lower, b.upper) for b in result.calibration] == [(0.0, 0.1), (0.9, 1.0)]
    assert result.ece == pytest.approx((2 * 0.45 + 2 * 0.05) / 4)


def test_ece_near_zero_when_calibrated_and_large_when_not(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(200_000)
    calibrated = (rng.random(p.size) < p).astype(np.int8)
    assert evaluate_scores(calibrated, p).ece < 0.01
    overconfident = (rng.random(p.size) < p**2).astype(np.int8)  # true rate p², predicted p
    assert evaluate_scores(overconfident, p).ece > 0.1
    assert sum(b.count for b in evaluate_scores(calibrated, p).calibration) == p.size


def brute_force_profit(
    y: np.ndarray, s: np.ndarray, *, cost: float, values: np.ndarray, success: float
) -> tuple[float | None, float]:
    best_threshold, best_profit = None, 0.0
    for t in np.unique(s):
        contacted = s >= t
        profit = float(np.sum(success * y[contacted] * values[contacted] - cost))
        if profit > best_profit + 1e-9:
            best_threshold, best_profit = float(t), profit
    return best_threshold, best_profit


@pytest.mark.parametrize("per_customer", [False, True])
def test_best_profit_threshold_equals_brute_force(seed: int, per_customer: bool) -> None:
    rng = np.random.default_rng(seed)
    y, s = noisy_scores(rng, 600)
    s = np.round(s, 2)  # many ties
    values = rng.gamma(2.0, 8.0, s.size) if per_customer else np.full(s.size, 12.0)
    result = evaluate_scores(
        y,
        s,
        contact_cost=2.5,
        retention_value=12.0,
        value=values if per_customer else None,
        success_rate=0.6,
    )
    threshold, profit = brute_force_profit(y, s, cost=2.5, values=values, success=0.6)
    assert threshold is not None
    assert result.profit.best_threshold == pytest.approx(threshold)
    assert result.profit.best_profit == pytest.approx(profit)
    assert result.profit.best_share_contacted == pytest.approx(np.mean(s >= threshold))
    assert result.headline()["best_profit"] == pytest.approx(profit)


def test_profit_when_contacting_nobody_is_best() -> None:
    result = evaluate_scores([0, 1, 0, 1], [0.2, 0.3, 0.6, 0.9], contact_cost=50.0)
    assert result.profit.best_threshold is None
    assert result.profit.best_profit == 0.0
    assert result.profit.best_share_contacted == 0.0
    assert max(result.profit.profit) < 0


def test_profit_curve_by_hand() -> None:
    # Scores high to low: churner (+10-1), stayer (-1), churner (+10-1).
    result = evaluate_scores([1, 0, 1], [0.9, 0.5, 0.1], contact_cost=1.0, retention_value=10.0)
    assert result.profit.thresholds == [0.9, 0.5, 0.1]
    assert result.profit.profit == [9.0, 8.0, 17.0]
    assert result.profit.share_contacted == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert result.profit.best_threshold == 0.1


def test_curves_are_thinned_and_json_ready(seed: int) -> None:
    y, s = noisy_scores(np.random.default_rng(seed), 20_000)
    result = evaluate_scores(y, s)
    for curve in (result.roc_curve, result.pr_curve):
        assert 2 <= len(curve.x) == len(curve.y) <= MAX_POINTS
    assert (result.roc_curve.x[0], result.roc_curve.y[0]) == (0.0, 0.0)
    assert (result.roc_curve.x[-1], result.roc_curve.y[-1]) == (1.0, 1.0)
    assert result.pr_curve.x[-1] == 1.0
    profit = result.profit
    assert len(profit.thresholds) <= MAX_POINTS + 1
    assert profit.best_profit in profit.profit  # the best point survives thinning
    document = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(result.headline()) <= set(document)
    assert document["positives"] == int(y.sum())
    assert len(document["deciles"]) == 10


def test_row_order_does_not_matter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, s = noisy_scores(rng, 3_000)
    order = rng.permutation(y.size)
    assert evaluate_scores(y, s).headline() == pytest.approx(
        evaluate_scores(y[order], s[order]).headline()
    )


def test_boolean_labels_are_accepted() -> None:
    assert evaluate_scores(np.array([False, True]), [0.2, 0.7]).roc_auc == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_score", "kwargs", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], {}, r"y_score: expected 3 values \(one per row of y_true\), got 2"),
        ([0, 2, 1], [0.1, 0.2, 0.3], {}, r"y_true: expected labels in \{0, 1\}.*index 1: 2"),
        ([1, 1], [0.1, 0.2], {}, r"y_true: expected both classes present, got only label 1"),
        ([0, 0], [0.1, 0.2], {}, r"y_true: expected both classes present, got only label 0"),
        (["no", "yes"], [0.1, 0.2], {}, r"y_true: expected numeric or boolean labels"),
        ([], [], {}, r"y_true: expected at least one value, got an empty array"),
        ([[0, 1]], [[0.1, 0.2]], {}, r"y_true: expected a 1-D array, got shape \(1, 2\)"),
        ([0, 1], [0.1, float("nan")], {}, r"y_score: expected finite scores.*index 1: nan"),
        ([0, 1], [0.1, 1.5], {}, r"y_score: expected probabilities in \[0, 1\].*index 1: 1.5"),
        ([0, 1], ["a", "b"], {}, r"y_score: expected numeric scores"),
        ([0, 1], [0.1, 0.2], {"contact_cost": -1.0}, r"contact_cost: expected a finite number"),
        ([0, 1], [0.1, 0.2], {"success_rate": 1.5}, r"success_rate: .* in \[0.0, 1.0\]"),
        ([0, 1], [0.1, 0.2], {"retention_value": math.inf}, r"retention_value: expected"),
        ([0, 1], [0.1, 0.2], {"value": np.array([1.0])}, r"value: expected 2 values"),
        ([0, 1], [0.1, 0.2], {"value": np.array([1.0, np.nan])}, r"value: expected finite"),
    ],
)
def test_bad_input_names_the_argument(
    y_true: list[object], y_score: list[object], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(EvaluationError, match=match) as caught:
        evaluate_scores(y_true, y_score, **kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == caught.value.argument
