"""Value at risk in batch scoring: value, expected loss = P(churn) × value, ranking, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from churnscale.cli import main
from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.evaluation.metrics import evaluate_scores
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.survival import SurvivalModel
from churnscale.scoring import score
from churnscale.scoring import value as scoring_value
from churnscale.training.local import TrainParams, train_local
from churnscale.training.survival import SurvivalJob, run_survival_training
from churnscale.value.risk import checked_value, expected_losses, loss_name

SMALL = Settings(batch_rows=1_024, predictor="lightgbm")
PARAMS = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)


def _customers(rows: int, seed: int) -> pa.Table:
    """Generated customers with ``clv`` (not a feature; every 7th missing) and ``churned``."""
    table = generate_table(rows, seed)
    clv = pc.multiply(table.column("monthly_charges"), 12.0).to_numpy()
    values = pa.array(clv, mask=np.arange(rows) % 7 == 3)
    return table.append_column("clv", values)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("value_at_risk")
    pq.write_table(_customers(3_000, 11), root / "train.parquet")
    hints = SchemaHints(target="churned", drop=("clv",))
    ingest(str(root / "train.parquet"), root / "ds", hints=hints)
    train_local(root / "ds", params=PARAMS).model.save(root / "model")
    pq.write_table(_customers(1_500, 12).drop_columns(["churned"]), root / "score.parquet")
    return root


@pytest.fixture(scope="module")
def survival(root: Path) -> SurvivalModel:
    job = SurvivalJob(
        root / "ds",
        "tenure_months",
        horizons=(3.0, 12.0),
        distribution="normal",
        sigma=1.0,
        params=PARAMS,
        register=False,
        out=root / "survival",
        report=root / "survival.html",
    )
    model = run_survival_training(job, Settings(home=root / "home")).model
    assert isinstance(model, SurvivalModel)
    return model


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in process: exit code, stdout, stderr."""
    old, sys.argv = sys.argv, ["churnscale", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI in process: exit code and stderr."""
    code, _, err = run(capsys, *args)
    return code, err


def test_expected_loss_is_probability_times_value_exactly(root: Path, tmp_path: Path) -> None:
    model = LightGBMModel.load(root / "model")
    out = tmp_path / "s.parquet"
    score(str(root / "score.parquet"), model, out, settings=SMALL, value_column="clv")
    scored = pq.read_table(out)
    assert scored.column_names == [
        "customer_id",
        "churn_probability",
        "value",
        "expected_loss",
        "decile",
    ]
    source = pq.read_table(root / "score.parquet")
    assert scored.column("value").to_pylist() == source.column("clv").to_pylist()
    probability = scored.column("churn_probability").to_numpy()
    value = scored.column("value").to_numpy(zero_copy_only=False)
    loss = scored.column("expected_loss")
    present = ~np.isnan(value)
    assert loss.null_count == (~present).sum() > 0  # a missing value gives a missing loss
    assert (loss.to_numpy(zero_copy_only=False)[present] == (probability * value)[present]).all()
    np.testing.assert_allclose(probability, model.predict_proba(source), rtol=0, atol=1e-12)


def test_rank_orders_rows_by_expected_loss_with_missing_last(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring_value, "RANK_SLICE", 100)  # many slices, across batches
    model = LightGBMModel.load(root / "model")
    plain, ranked = tmp_path / "plain.parquet", tmp_path / "ranked.parquet"
    score(str(root / "score.parquet"), model, plain, settings=SMALL, value_column="clv")
    score(str(root / "score.parquet"), model, ranked, settings=SMALL, value_column="clv", rank=True)
    first, second = pq.read_table(plain), pq.read_table(ranked)
    assert second.column("rank").to_pylist() == list(range(1, second.num_rows + 1))
    loss = second.column("expected_loss")
    known = loss.to_numpy(zero_copy_only=False)[: second.num_rows - loss.null_count]
    assert (np.diff(known) <= 0).all() and not np.isnan(known).any()
    assert loss.slice(known.size).null_count == loss.null_count  # missing losses come last
    # the same rows, only reordered
    by_id = {r["customer_id"]: r for r in first.to_pylist()}
    for row in second.to_pylist():
        expected = by_id[row.pop("customer_id")]
        row.pop("rank")
        assert row == {k: v for k, v in expected.items() if k != "customer_id"}
    order = np.argsort(-np.nan_to_num(first.column("expected_loss").to_numpy(False), nan=-1))
    assert first.column("customer_id").take(order[:20]) == second.column("customer_id")[:20]


def test_rank_without_a_value_orders_by_churn_probability(root: Path, tmp_path: Path) -> None:
    model = LightGBMModel.load(root / "model")
    out = tmp_path / "r.parquet"
    score(str(root / "score.parquet"), model, out, settings=SMALL, rank=True)
    scored = pq.read_table(out)
    assert "expected_loss" not in scored.column_names
    assert (np.diff(scored.column("churn_probability").to_numpy()) <= 0).all()
    assert (np.diff(scored.column("decile").to_numpy()) >= 0).all()


def test_survival_model_loses_value_at_each_horizon(
    root: Path, survival: SurvivalModel, tmp_path: Path
) -> None:
    out = tmp_path / "s.parquet"
    score(str(root / "score.parquet"), survival, out, settings=SMALL, value_column="clv")
    scored = pq.read_table(out)
    assert {"expected_loss", "expected_loss_3", "expected_loss_12"} <= set(scored.column_names)
    value = scored.column("value").to_numpy(zero_copy_only=False)
    present = ~np.isnan(value)
    for probability, loss in (
        ("churn_probability", "expected_loss"),
        ("churn_within_3", "expected_loss_3"),
        ("churn_within_12", "expected_loss_12"),
    ):
        p = scored.column(probability).to_numpy()
        got = scored.column(loss).to_numpy(zero_copy_only=False)
        assert (got[present] == (p * value)[present]).all(), loss
    early = scored.column("expected_loss_3").to_numpy(zero_copy_only=False)[present]
    late = scored.column("expected_loss_12").to_numpy(zero_copy_only=False)[present]
    assert (early <= late).all() and (early < late).any()  # more is at stake further out


def test_value_column_may_be_a_feature(root: Path, tmp_path: Path) -> None:
    model = LightGBMModel.load(root / "model")
    out = tmp_path / "f.parquet"
    score(str(root / "score.parquet"), model, out, settings=SMALL, value_column="monthly_charges")
    scored = pq.read_table(out)
    source = pq.read_table(root / "score.parquet")
    assert scored.column("value").to_pylist() == source.column("monthly_charges").to_pylist()


def test_bad_value_columns_are_one_line_errors(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["score", str(root / "score.parquet"), "--model", str(root / "model")]
    code, err = cli(capsys, *base, "--out", str(tmp_path / "a.parquet"), "--value-col", "nope")
    assert code == 2
    assert err == "error: --value-col: expected a column of the data, got 'nope'\n"
    code, err = cli(capsys, *base, "--out", str(tmp_path / "b.parquet"), "--value-col", "plan")
    assert code == 2
    assert err == "error: --value-col: expected a numeric column, got 'plan (categorical)'\n"
    code, err = cli(capsys, *base, "--out", str(tmp_path / "c.parquet"), "--value-col", "clv")
    assert code == 0, err
    assert not (tmp_path / "a.parquet").exists() and not (tmp_path / "b.parquet").exists()


def test_a_negative_value_stops_scoring_naming_the_column_and_customer(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pq.read_table(root / "score.parquet")
    clv = table.column("clv").to_pylist()
    clv[700] = -5.0
    bad = table.set_column(table.schema.get_field_index("clv"), "clv", pa.array(clv))
    pq.write_table(bad, tmp_path / "bad.parquet")
    out = tmp_path / "o.parquet"
    args = ["score", str(tmp_path / "bad.parquet"), "--model", str(root / "model")]
    code, err = cli(capsys, *args, "--out", str(out), "--value-col", "clv")
    customer = table.column("customer_id")[700].as_py()
    assert code == 2
    assert err == (
        f"error: column 'clv': a value must be a finite number >= 0, got -5.0 "
        f"(customer {customer})\n"
    )
    assert not out.exists() and not list(tmp_path.glob(".o.parquet*"))
    with pytest.raises(SchemaError, match="column 'clv'"):
        score(
            str(tmp_path / "bad.parquet"),
            LightGBMModel.load(root / "model"),
            out,
            settings=SMALL,
            value_column="clv",
        )


def test_value_and_rank_are_refused_on_a_cluster(root: Path, tmp_path: Path) -> None:
    from churnscale.api import score as score_data

    with pytest.raises(ConfigError, match="--cluster: expected no --value-col or --rank"):
        score_data(
            str(root / "ds"),
            str(root / "model"),
            tmp_path / "o",
            value="clv",
            cluster="local:1",
            settings=SMALL,
        )


def test_loss_names_and_one_request_value() -> None:
    assert loss_name("churn_probability") == "expected_loss"
    assert loss_name("churn_within_2.5") == "expected_loss_2.5"
    assert loss_name("restricted_mean_12") is None
    losses = expected_losses({"survival_3": np.array([0.9])}, np.array([10.0]))
    assert losses == {}
    assert checked_value(None, field="value") is None
    assert checked_value(3, field="value") == 3.0
    for bad in (-1.0, float("inf"), "12", True):
        with pytest.raises(SchemaError, match="column 'value': a value must be a finite number"):
            checked_value(bad, field="value")


def test_evaluate_profit_takes_a_value_column_the_model_does_not_use(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _customers(1_200, 13)
    clv = pc.fill_null(table.column("clv"), 0.0)
    labelled = table.set_column(table.schema.get_field_index("clv"), "clv", clv)
    pq.write_table(labelled, tmp_path / "labelled.parquet")
    model = LightGBMModel.load(root / "model")
    assert "clv" not in model.preprocessor.schema.names
    args = ["evaluate", str(root / "model"), str(tmp_path / "labelled.parquet"), "--json"]
    code, out, err = run(capsys, *args, "--value-col", "clv")
    assert code == 0, err
    expected = evaluate_scores(  # the metrics' own profit curve on the same values
        labelled.column("churned").to_numpy(),
        model.predict_proba(labelled),
        value=clv.to_numpy(),
    )
    summary = json.loads(out)
    assert summary["metrics"]["best_profit"] == pytest.approx(expected.profit.best_profit)
    flat = evaluate_scores(labelled.column("churned").to_numpy(), model.predict_proba(labelled))
    assert expected.profit.best_profit != pytest.approx(flat.profit.best_profit)
    code, err = cli(capsys, *args, "--value-col", "nope")
    assert code == 2
    assert err == "error: --value-col: expected a column of the data, got 'nope'\n"


def test_the_service_answers_a_survival_models_loss_at_each_horizon(
    root: Path, survival: SurvivalModel
) -> None:
    from fastapi.testclient import TestClient

    from churnscale.serving.app import create_app

    table = pq.read_table(root / "score.parquet").slice(0, 3)
    expected = survival.predict(table)
    settings = Settings(model=str(root / "survival"), home=root / "home")
    with TestClient(create_app(settings)) as client:
        for i, row in enumerate(table.to_pylist()):
            x = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
            x = {k: v for k, v in x.items() if k in survival.feature_names or k == "customer_id"}
            answer = client.post("/v1/predict", json={**x, "value": 500.0})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            outputs = body["outputs"]
            assert body["expected_loss"] == body["churn_probability"] * 500.0
            for horizon in ("3", "12"):
                loss = outputs[f"expected_loss_{horizon}"]
                assert loss == outputs[f"churn_within_{horizon}"] * 500.0
                assert loss == pytest.approx(expected[f"churn_within_{horizon}"][i] * 500.0)
