from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from churnscale.evaluation import leakage_warnings, single_feature_aucs
from churnscale.evaluation.leakage import MODEL
from churnscale.exceptions import EvaluationError


def table_columns(table: pa.Table) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every feature of a generated table as numpy, and the label."""
    columns = {
        name: table.column(name).to_numpy() for name in table.column_names if name != "churned"
    }
    return columns, table.column("churned").to_numpy()


def test_generated_features_are_not_flagged(small_table: pa.Table) -> None:
    columns, y = table_columns(small_table)
    aucs = single_feature_aucs(columns, y)
    assert set(aucs) == set(columns)
    assert all(0.5 <= auc < 0.9 for auc in aucs.values())
    assert aucs["customer_id"] < 0.56  # unique ids never recur across the two folds
    assert aucs["usage_trend"] > 0.6  # a real driver of churn does stand out
    assert leakage_warnings(aucs) == []


def test_planted_label_copy_is_flagged_and_id_is_not(small_table: pa.Table, seed: int) -> None:
    columns, y = table_columns(small_table)
    rng = np.random.default_rng(seed)
    columns["refund_issued"] = y + rng.normal(0.0, 0.2, y.size)
    columns["cancel_reason"] = np.where(y == 1, "moved", "none").astype(object)
    columns["row_number"] = rng.permutation(y.size)
    aucs = single_feature_aucs(columns, y, categorical=["row_number"])
    flagged = [w.feature for w in leakage_warnings(aucs)]
    assert flagged[:2] == sorted(flagged[:2], key=lambda name: -aucs[name])
    assert set(flagged) == {"refund_issued", "cancel_reason"}
    assert aucs["row_number"] < 0.56
    assert aucs["customer_id"] < 0.56


def test_missingness_that_gives_the_label_away_is_flagged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 2_000)
    exit_survey_score = np.where(y == 1, rng.normal(5.0, 1.0, y.size), np.nan)
    aucs = single_feature_aucs({"exit_survey_score": exit_survey_score}, y)
    assert aucs["exit_survey_score"] == pytest.approx(1.0)


def test_direction_does_not_matter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 1_000)
    signal = y + rng.normal(0.0, 1.0, y.size)
    aucs = single_feature_aucs({"up": signal, "down": -signal}, y)
    assert aucs["up"] == pytest.approx(aucs["down"])
    assert aucs["up"] > 0.7


def test_model_that_is_too_perfect_is_flagged() -> None:
    warnings = leakage_warnings({"tenure": 0.7}, model_auc=0.999)
    assert [w.feature for w in warnings] == [MODEL]
    assert "implausibly perfect" in warnings[0].message
    assert leakage_warnings({"tenure": 0.7}, model_auc=0.9) == []


def test_warning_names_feature_and_auc() -> None:
    (warning,) = leakage_warnings({"days_to_cancel": 0.991, "tenure": 0.7})
    assert warning.feature == "days_to_cancel"
    assert warning.auc == 0.991
    assert "'days_to_cancel' alone separates churners with AUC 0.9910" in warning.message


def test_bad_arguments_are_named() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(EvaluationError, match=r"columns\['x'\]: expected 4 values"):
        single_feature_aucs({"x": np.arange(3)}, y)
    with pytest.raises(EvaluationError, match="categorical: expected names of given columns"):
        single_feature_aucs({"x": np.arange(4)}, y, categorical=["z"])
    with pytest.raises(EvaluationError, match="y: expected both classes present"):
        single_feature_aucs({"x": np.arange(4)}, np.zeros(4))
    with pytest.raises(EvaluationError, match=r"threshold: expected a finite number in \[0.5"):
        leakage_warnings({}, threshold=1.5)
