"""The public ChurnModel: train, predict, explain, evaluate, save and load from Python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import churnscale
from churnscale.config import Settings
from churnscale.exceptions import ChurnscaleError, InputTypeError, SchemaError
from churnscale.model import LightGBMModel
from churnscale.registry import Registry

#: conftest's QUICK parameters (the trained fixture's).
QUICK = {"learning_rate": 0.1, "max_rounds": 60, "early_stopping_rounds": 10, "threads": 1}


def test_train_reports_the_holdout_and_the_cv_folds(trained: churnscale.ChurnModel) -> None:
    assert isinstance(trained.model, LightGBMModel)  # the facade holds the contract model
    summary = trained.summary()
    assert summary["model"] == "api-churn/1" == trained.version
    assert set(summary["cv"]) == set(summary["metrics"])
    assert summary["served_model"]["all_rows"] is True  # refitted on every row, as the CLI
    report = trained.report
    assert report is not None and report.metrics == summary["metrics"]
    assert 0.6 < report.metrics["roc_auc"] <= 1.0
    assert Path(summary["report"]).is_file()


def test_the_returned_model_saw_every_row_and_refit_false_keeps_the_evaluated_one(
    trained: churnscale.ChurnModel, customers: pa.Table, api_settings: Settings
) -> None:
    assert trained.model.metadata["refit"]["rows"] == customers.num_rows
    kept = churnscale.train(
        customers.to_pandas(), target="churned", refit=False, settings=api_settings, **QUICK
    )
    served = kept.summary()["served_model"]
    assert served["all_rows"] is False and "refit" not in kept.model.metadata
    assert served["rows"] == kept.model.metadata["rows"]["train"] < customers.num_rows
    # the same hold-out figures (the evaluated model is the same); another served model
    assert kept.summary()["metrics"] == pytest.approx(trained.summary()["metrics"])
    assert kept.model.booster.model_to_string() != trained.model.booster.model_to_string()


def test_every_frame_type_gives_the_same_probabilities(
    trained: churnscale.ChurnModel, fresh: pa.Table
) -> None:
    expected = trained.model.predict_proba(fresh)
    for X in (
        fresh,
        fresh.to_batches()[0] if fresh.num_rows == fresh.to_batches()[0].num_rows else fresh,
        fresh.to_pandas(),
        pl.from_arrow(fresh),
        fresh.drop_columns(["customer_id", "churned"]).to_pandas(),
    ):
        got = trained.predict_proba(X)
        assert got.dtype == np.float64 and got.shape == (fresh.num_rows,)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("X", "shown"),
    [
        ([[1.0, 2.0]], "builtins.list"),
        (np.zeros((2, 3)), "numpy.ndarray"),
        ({"tenure_months": [1]}, "builtins.dict"),
        (pd.Series([1.0]), "pandas.Series"),
    ],
)
def test_anything_else_is_an_input_type_error(
    trained: churnscale.ChurnModel, X: object, shown: str
) -> None:
    with pytest.raises(
        InputTypeError, match=rf"^X: expected a pandas or polars DataFrame.*got {shown}"
    ):
        trained.predict_proba(X)
    assert issubclass(InputTypeError, ChurnscaleError) and issubclass(InputTypeError, TypeError)


def test_a_value_that_cannot_be_read_names_its_row_and_column(
    trained: churnscale.ChurnModel, fresh: pa.Table
) -> None:
    frame = fresh.to_pandas()
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    frame.loc[2, "tenure_months"] = "twelve"
    with pytest.raises(
        SchemaError, match=r"column 'tenure_months': X row 2: not a number \(got 'twelve'\)"
    ):
        trained.predict_proba(frame)
    with pytest.raises(SchemaError, match="missing columns: tenure_months"):
        trained.predict_proba(fresh.drop_columns(["tenure_months"]))


def test_explain_gives_the_top_reasons_of_each_customer(
    trained: churnscale.ChurnModel, fresh: pa.Table
) -> None:
    reasons = trained.explain(fresh.to_pandas(), top=4)
    assert len(reasons) == fresh.num_rows and {len(r) for r in reasons} == {4}
    assert reasons == trained.model.explain(fresh, top=4)  # type: ignore[attr-defined]
    for row in reasons:
        sizes = [abs(r.contribution) for r in row]
        assert sizes == sorted(sizes, reverse=True)


def test_evaluate_a_frame_as_the_cli_evaluates_a_file(
    trained: churnscale.ChurnModel, fresh: pa.Table, tmp_path: Path, api_settings: Settings
) -> None:
    path = tmp_path / "fresh.parquet"
    pq.write_table(fresh, path)
    frame = fresh.to_pandas()
    with_y = trained.evaluate(frame.drop(columns="churned"), frame["churned"])
    in_frame = trained.evaluate(pl.from_arrow(fresh))  # the target column is in X
    from_file = trained.evaluate(path, settings=api_settings)
    assert with_y.metrics == pytest.approx(in_frame.metrics)
    assert with_y.metrics == pytest.approx(from_file.metrics)
    assert with_y.summary()["holdout_rows"] == fresh.num_rows
    page = with_y._repr_html_()
    assert page.startswith("<!DOCTYPE html>") and with_y.title in page and "ROC" in page
    saved = with_y.to_html(tmp_path / "eval.html")
    assert with_y.title in saved.read_text()


def test_evaluate_refuses_labels_of_another_length(
    trained: churnscale.ChurnModel, fresh: pa.Table
) -> None:
    with pytest.raises(SchemaError, match="y has 3 labels for 400 rows of X"):
        trained.evaluate(fresh, np.array([0, 1, 0]))
    with pytest.raises(InputTypeError, match=r"^y: expected a 1-d numpy array"):
        trained.evaluate(fresh, [0, 1])  # type: ignore[arg-type]


def test_save_and_load_by_path_version_and_alias(
    trained: churnscale.ChurnModel, fresh: pa.Table, tmp_path: Path, api_settings: Settings
) -> None:
    bundle = trained.save(tmp_path / "bundle")
    Registry(api_settings).promote("api-churn", 1, alias="champion")
    expected = trained.predict_proba(fresh)
    for reference in (bundle, "api-churn/1", "api-churn@champion"):
        loaded = churnscale.load_model(reference, settings=api_settings)
        np.testing.assert_array_equal(loaded.predict_proba(fresh), expected)
        assert loaded.training is None and loaded.report is None
    assert churnscale.load_model("api-churn/1", settings=api_settings).version == "api-churn/1"
    assert churnscale.load_model(bundle).version.startswith("sha256:")


def test_a_frame_trains_the_model_its_file_trains(customers: pa.Table, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    small = customers.slice(0, 1_500)
    quick = {"max_rounds": 30, "threads": 1, "learning_rate": 0.1}
    from_frame = churnscale.train(
        pl.from_arrow(small), target="churned", settings=settings, **quick
    )
    pq.write_table(small, tmp_path / "small.parquet")
    from_file = churnscale.train(
        str(tmp_path / "small.parquet"), target="churned", settings=settings, **quick
    )
    trees = [m.model.booster.model_to_string() for m in (from_frame, from_file)]  # type: ignore[attr-defined]
    assert trees[0] == trees[1]
    assert from_frame.metadata["data_fingerprint"] == from_file.metadata["data_fingerprint"]


def test_unknown_parameters_and_bad_data_are_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(ChurnscaleError, match=r"^params: expected fields of \[.*got \['leaves'\]"):
        churnscale.train(pa.table({"a": [1]}), target="a", settings=settings, leaves=3)
    with pytest.raises(InputTypeError, match=r"^data: expected a pandas or polars DataFrame"):
        churnscale.train(np.zeros((3, 2)), target="a", settings=settings)  # type: ignore[arg-type]
