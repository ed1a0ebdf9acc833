"""Time to churn end to end: ``train --duration-col`` → registry → service and ``score``.

A small generated dataset whose durations follow a known AFT law (log-normal, censored at
random and at the data's end); ``total`` is ``monthly × months``, the shape of Telco's
``TotalCharges`` leak.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from churnscale.cli import main
from churnscale.config import Settings
from churnscale.evaluation import survival as sm
from churnscale.evaluation.survival_assessment import duration_leakage
from churnscale.model.loading import load_bundle, load_model
from churnscale.model.survival import SurvivalModel
from churnscale.serving.app import create_app
from churnscale.training.aft import Durations, boost_aft
from churnscale.training.local import TrainParams

FAST = ["--learning-rate", "0.1", "--max-rounds", "150", "--early-stopping-rounds", "15"]
AFT = ["--distribution", "normal", "--sigma", "1.0", "--threads", "1"]
TELCO = Path(__file__).resolve().parents[3] / (
    "shared/datasets/telco/WA_Fn-UseC_-Telco-Customer-Churn.csv"
)


def _customers(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    plan = rng.choice(["month", "year", "two-year"], size=rows)
    monthly = rng.uniform(20, 110, size=rows).round(2)
    log_t = 2.3 + 0.7 * x1 + np.where(plan == "two-year", 1.0, 0.0) + 0.5 * rng.normal(size=rows)
    censor = np.minimum(rng.uniform(1, 60, size=rows), 36.0)
    months = np.ceil(np.minimum(np.exp(log_t), censor))
    churned = np.where(np.exp(log_t) <= censor, "Yes", "No")
    return pa.table(
        {
            "customer_id": [f"c{i}" for i in range(rows)],
            "x1": x1,
            "plan": plan,
            "monthly": monthly,
            "total": (monthly * months).round(2),
            "months": months,
            "churned": churned,
        }
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("survival") / "customers.csv"
    pacsv.write_csv(_customers(2_500, 7), path)
    return path


@pytest.fixture
def home(tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(migrated_store) as source, sqlite3.connect(home / "mlflow.db") as target:
        source.backup(target)
    source.close()
    target.close()
    for name in ("CHURNSCALE_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURNSCALE_HOME", str(home))
    return home


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["churnscale", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def _survival_args(raw: Path) -> list[str]:
    return [
        *("train", str(raw), "--id", "customer_id", "--duration-col", "months"),
        *("--event-col", "churned", "--event-label", "Yes", "--horizons", "3,6,12"),
        *FAST,
        *AFT,
    ]


def test_registered_survival_model_serves_and_scores_the_same_numbers(
    home: Path, raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, *_survival_args(raw), "--drop", "total", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "churn/1" and summary["model_type"] == "survival"
    assert summary["metrics"]["c_harrell"] > 0.7  # the law is learnable: x1 and plan
    assert summary["leakage_warnings"] == []
    assert "<html" in Path(summary["report"]).read_text()[:200].lower()
    model = load_model("churn/1", Settings(home=home))
    assert isinstance(model, SurvivalModel)
    assert "months" not in model.feature_names and "total" not in model.feature_names
    table = pacsv.read_csv(raw).drop_columns(["total", "months", "churned"]).slice(0, 300)
    expected = model.predict(table)
    # curves: monotone in the horizon, within [0, 1], churn within = 1 - survival
    s3, s6, s12 = (expected[f"survival_{h}"] for h in (3, 6, 12))
    assert ((s3 >= s6) & (s6 >= s12) & (s12 >= 0) & (s3 <= 1)).all()
    np.testing.assert_allclose(expected["churn_within_12"], 1 - s12, atol=1e-15)
    assert ((expected["restricted_mean_12"] > 0) & (expected["restricted_mean_12"] <= 12)).all()
    np.testing.assert_array_equal(expected["churn_probability"], expected["churn_within_12"])
    # the service (a fresh load from the registry) answers the same numbers
    with TestClient(create_app(Settings(home=home, model="churn/1"))) as client:
        for i in (0, 1, 2):
            x = {k: v for k, v in table.slice(i, 1).to_pylist()[0].items() if v is not None}
            body = client.post("/v1/predict?reasons=true", json=x).json()
            assert body["churn_probability"] == pytest.approx(
                expected["churn_probability"][i], abs=1e-12
            )
            for name, value in body["outputs"].items():
                assert value == pytest.approx(expected[name][i], abs=1e-12), name
            assert len(body["reasons"]) == 3
    # batch scoring writes every output, equal too
    source = tmp_path / "score.csv"
    pacsv.write_csv(table, source)
    code, _, err = cli(
        capsys, "score", str(source), "--model", "churn/1", "--out", str(tmp_path / "s.parquet")
    )
    assert code == 0, err
    scored = pq.read_table(tmp_path / "s.parquet")
    assert scored.column_names[: len(model.outputs) + 1] == ["customer_id", *model.outputs]
    for name in model.outputs:
        np.testing.assert_allclose(scored.column(name).to_numpy(), expected[name], atol=1e-12)


def test_leak_shaped_like_total_charges_is_named(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    args = [
        *_survival_args(raw),
        "--no-register",
        "--out",
        str(bundle),
        "--report",
        str(tmp_path / "r.html"),
    ]
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    assert "leakage warning:" in err and "total / monthly" in err
    assert "monthly /" not in err  # only the feature that leaks is named
    model = load_bundle(bundle)
    assert model.metadata["leakage_warnings"][0].startswith("total / monthly")
    assert "Possible duration leakage" in (tmp_path / "r.html").read_text()


def test_telco_total_charges_gets_the_warning() -> None:
    frame = pacsv.read_csv(TELCO, convert_options=pacsv.ConvertOptions(null_values=[" "]))
    warnings = duration_leakage(frame, ["MonthlyCharges", "TotalCharges"], "tenure")
    assert [w.feature for w in warnings] == ["TotalCharges"]
    assert "TotalCharges / MonthlyCharges" in warnings[0].message


def test_censored_rows_dropped_or_kept_give_different_curves() -> None:
    table = _customers(3_000, 3)
    x = np.column_stack([table["x1"].to_numpy(), table["monthly"].to_numpy()])
    t = table["months"].to_numpy().astype(np.float64)
    e = table["churned"].to_numpy(zero_copy_only=False) == "Yes"
    params = TrainParams(learning_rate=0.1, max_rounds=100, early_stopping_rounds=10, threads=1)

    def fit(rows: np.ndarray) -> np.ndarray:
        train, valid = rows[: int(len(rows) * 0.8)], rows[int(len(rows) * 0.8) :]
        dtrain = lgb.Dataset(x[train], label=e[train].astype(np.float32), params={"verbosity": -1})
        dvalid = lgb.Dataset(x[valid], label=e[valid].astype(np.float32), reference=dtrain)
        result = boost_aft(
            dtrain,
            dvalid,
            Durations.of(t[train], e[train], floor=0.5),
            Durations.of(t[valid], e[valid], floor=0.5),
            params,
            candidates=[("normal", 1.0)],
            valid_matrix=lambda: x[valid],
        )
        mu = result.booster.predict(x, raw_score=True) + result.intercept
        return np.asarray(result.aft.survival(mu, np.array([12.0]))[:, 0])

    kept = fit(np.arange(len(t))).mean()
    dropped = fit(np.flatnonzero(e)).mean()  # censored customers thrown away
    truth = float(sm.kaplan_meier(t, e).at(np.array([12.0]))[0])
    # dropping the censored keeps only those who left: survival is far too low
    assert dropped < kept - 0.1
    assert abs(kept - truth) < 0.05 < abs(dropped - truth), (kept, dropped, truth)


def test_binary_only_flags_are_refused_with_a_duration(
    raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, *_survival_args(raw), "--cv", "3")
    assert code == 2 and "--cv" in err
    code, _, err = cli(capsys, "train", str(raw), "--horizons", "3,6")
    assert code == 2 and "--duration-col" in err


def test_python_api_trains_the_same_kind(tmp_path: Path) -> None:
    import churnscale

    frame = _customers(1_500, 5).to_pandas()
    model = churnscale.train_survival(
        frame,
        duration_col="months",
        event_col="churned",
        event_label="Yes",
        horizons=[3, 12],
        id="customer_id",
        drop=["total"],
        distribution="normal",
        sigma=1.0,
        learning_rate=0.1,
        max_rounds=60,
        threads=1,
        settings=Settings(home=tmp_path),
    )
    assert model.model_type == "survival"
    outputs = model.predict(frame.head(50))
    assert sorted(outputs) == sorted(model.model.outputs)
    np.testing.assert_array_equal(model.predict_proba(frame.head(50)), outputs["churn_within_12"])


def test_default_horizons_are_the_event_quartiles() -> None:
    from churnscale.training.survival import default_horizons

    time = np.arange(1.0, 101.0)
    event = time <= 80  # durations past 80 censored: the quartiles of 1..80
    assert default_horizons(time, event) == (20.8, 40.5, 60.2)
    assert default_horizons(time, np.zeros(100, bool)) == (25.8, 50.5, 75.2)
