"""``churnscale.sklearn.ChurnClassifier``: scikit-learn's estimator checks, and its use in
Pipeline, cross_val_score and GridSearchCV on pandas, polars and pyarrow frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from churnscale.data.synthetic import generate_table
from churnscale.sklearn import ChurnClassifier

#: The one check that fails, and why (see the module's docstring for the checks not run).
EXPECTED_FAILED = {
    "check_class_weight_classifiers": "class_weight is 'none' or 'balanced' (LightGBM's "
    "is_unbalance), not a dict of weights per class",
}


def _expected_failed(estimator: BaseEstimator) -> dict[str, str]:
    return EXPECTED_FAILED


@parametrize_with_checks(
    # the checks fit 20 to 300 rows: fixed rounds on every row (too few rows to hold some out)
    [ChurnClassifier(rounds=30, min_child_samples=2, threads=1)],
    expected_failed_checks=_expected_failed,
)
def test_estimator_checks(estimator: BaseEstimator, check: Callable[[BaseEstimator], Any]) -> None:
    check(estimator)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """2,000 customers with categories, booleans, dates and a label."""
    return generate_table(2_000, 6).to_pandas()


QUICK = {"max_rounds": 60, "early_stopping_rounds": 10, "learning_rate": 0.1, "threads": 1}


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_cross_val_score_on_mixed_type_frames(frame: pd.DataFrame, kind: str) -> None:
    X = frame.drop(columns=["customer_id", "churned"])
    y = frame["churned"].to_numpy()
    given: Any = {"pandas": X, "polars": pl.from_pandas(X), "pyarrow": pa.Table.from_pandas(X)}[
        kind
    ]
    scores = cross_val_score(ChurnClassifier(**QUICK), given, y, cv=2, scoring="roc_auc")
    assert scores.shape == (2,) and scores.min() > 0.7


def test_pipeline_and_grid_search(frame: pd.DataFrame) -> None:
    X = frame.drop(columns=["churned"])
    y = np.where(frame["churned"] == 1, "churned", "stayed")  # any two labels
    keep = ColumnTransformer(
        [("drop_id", "drop", ["customer_id"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    pipeline = Pipeline([("columns", keep), ("model", ChurnClassifier(**QUICK))])
    search = GridSearchCV(pipeline, {"model__num_leaves": [4, 16]}, cv=2, scoring="roc_auc")
    search.fit(X, y)
    assert search.best_params_["model__num_leaves"] in (4, 16)
    assert set(search.predict(X.head(50))) <= {"churned", "stayed"}
    proba = search.predict_proba(X.head(50))
    assert list(search.classes_) == ["churned", "stayed"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    model = search.best_estimator_.named_steps["model"]
    assert model.n_features_in_ == X.shape[1] - 1
    assert list(model.feature_names_in_) == [c for c in X.columns if c != "customer_id"]


def test_a_frame_with_other_columns_at_predict_is_refused(frame: pd.DataFrame) -> None:
    X = frame.drop(columns=["customer_id", "churned"])
    model = ChurnClassifier(**QUICK).fit(X, frame["churned"])
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict_proba(X.drop(columns=["region"]))
