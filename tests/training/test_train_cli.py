"""``churnscale train`` / ``evaluate`` end to end with a real MLflow SQLite store on disk.

The CLI runs in-process through :func:`churnscale.cli.main` (the console-script entry point,
error mapping included), so every error path is checked for exit code 2 and one line.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnscale.cli import main
from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.evaluation.leakage import MODEL
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry

FAST = ["--learning-rate", "0.2", "--max-rounds", "60", "--early-stopping-rounds", "10"]


@pytest.fixture
def home(tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project home whose MLflow store is already migrated; the CLI finds it by env."""
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


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8,000 generated customers as CSV, and a second batch for continued training."""
    root = tmp_path_factory.mktemp("raw")
    write_batches(generate_table(8_000, seed=11).to_batches(), root / "a.csv", fmt="csv")
    write_batches(generate_table(4_000, seed=12).to_batches(), root / "b.parquet")
    return root


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``churnscale ARGS`` in-process; returns (exit code, stdout, stderr)."""
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


def test_train_registers_and_evaluates(
    home: Path, raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    code, out, err = cli(
        capsys,
        *("train", str(raw / "a.csv"), "--target", "churned", "--id", "customer_id"),
        *("--cv", "3", "--report", str(report), "--json", *FAST),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "churn/1" and summary["report"] == str(report)
    assert 0.75 < summary["metrics"]["roc_auc"] < 0.97
    assert set(summary["cv"]["roc_auc"]) == {"mean", "std"}
    assert summary["cv"]["roc_auc"]["std"] > 0  # three real folds, not one figure repeated
    assert summary["leakage_warnings"] == []
    assert len(summary["top_features"]) == 10
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 6 and "Cross-validation" in page
    registry = Registry(Settings())
    version = registry.show("churn", 1)
    run = registry.client.get_run(version.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(summary["metrics"]["roc_auc"])
    assert run.data.params["learning_rate"] == "0.2"
    artifacts = {a.path for a in registry.client.list_artifacts(version.run_id)}
    assert {"bundle", "report"} <= artifacts

    # the registered model, by alias, judged on new labelled data
    code, _, err = cli(capsys, "models", "promote", "churn", "1", "--alias", "champion")
    assert code == 0, err
    code, out, err = cli(capsys, "evaluate", "churn@champion", str(raw / "b.parquet"), "--json")
    assert code == 0, err
    judged = json.loads(out)
    assert judged["holdout_rows"] == 4_000 and judged["rejected"] == 0
    model = LightGBMModel.load(registry.resolve("churn/1"))
    assert model.reference is not None  # drift reference stored in the bundle
    table = pq.read_table(raw / "b.parquet")
    expected = model.predict_proba(table)
    from sklearn.metrics import roc_auc_score

    y = table.column("churned").to_numpy()
    assert judged["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, expected), abs=1e-9)

    # continued training from the champion: a new version whose parent is churn/1
    code, out, err = cli(
        capsys,
        *("train", str(raw / "b.parquet"), "--target", "churned", "--id", "customer_id"),
        *("--init-model", "churn@champion", "--json", *FAST),
    )
    assert code == 0, err
    child = json.loads(out)
    assert child["model"] == "churn/2" and child["parent"] == "churn/1"
    assert registry.show("churn", 2).parent == "churn/1"
    grown = LightGBMModel.load(registry.resolve("churn/2"))
    assert grown.booster.current_iteration() > model.booster.current_iteration()


def test_the_saved_model_saw_every_input_row_unless_no_refit(
    home: Path, raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --out M``: M is refitted on all 8,000 CSV rows; ``--no-refit`` saves the model
    the hold-out judged (its training rows only); both report the same hold-out figures."""
    runs = {}
    for name, flags in (("refit", []), ("kept", ["--no-refit"])):
        code, out, err = cli(
            capsys,
            *("train", str(raw / "a.csv"), "--target", "churned", "--id", "customer_id"),
            *("--no-register", "--out", str(tmp_path / name), "--json", *FAST, *flags),
        )
        assert code == 0, err
        runs[name] = (json.loads(out), LightGBMModel.load(tmp_path / name))
    (summary, model), (kept_summary, kept) = runs["refit"], runs["kept"]
    assert model.metadata["refit"]["rows"] == 8_000
    assert summary["served_model"] == {
        "rows": 8_000,
        "all_rows": True,
        "rounds": model.booster.current_iteration(),
    }
    held = summary["holdout_rows"]
    assert summary["evaluation"]["rows"]["test"] == held
    assert summary["evaluation"]["rows"]["train"] + summary["evaluation"]["rows"]["valid"] == (
        8_000 - held
    )
    assert "refit" not in kept.metadata and kept_summary["served_model"]["all_rows"] is False
    assert kept_summary["served_model"]["rows"] == summary["evaluation"]["rows"]["train"]
    assert kept_summary["metrics"] == pytest.approx(summary["metrics"])
    assert kept.booster.model_to_string() != model.booster.model_to_string()


def test_leaky_column_warns(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = generate_table(4_000, seed=5)
    churned = table.column("churned").to_numpy()
    noise = np.random.default_rng(0).normal(0, 0.01, churned.size)
    table = table.append_column("cancel_flag", pa.array(churned + noise))
    write_batches(table.to_batches(), tmp_path / "leaky.parquet")
    code, out, err = cli(
        capsys,
        *("train", str(tmp_path / "leaky.parquet"), "--target", "churned", "--id", "customer_id"),
        *("--no-register", "--out", str(tmp_path / "bundle"), "--json", *FAST),
    )
    assert code == 0, err
    warnings = json.loads(out)["leakage_warnings"]
    flagged = {w["feature"] for w in warnings}
    assert "cancel_flag" in flagged
    assert not flagged - {"cancel_flag", MODEL}
    assert LightGBMModel.load(tmp_path / "bundle").metadata["leakage_warnings"]
    assert not (home / "mlflow.db").read_bytes().count(b"leaky")  # --no-register: nothing tracked


def test_failed_run_registers_nothing(
    home: Path, raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --split time with a date column that holds one date only fails inside the tracked run
    table = generate_table(2_000, seed=3)
    one_day = pa.array(np.full(table.num_rows, np.datetime64("2026-01-01", "us")))
    table = table.append_column("snapshot", one_day)
    path = raw / "one_day.parquet"
    write_batches(table.to_batches(), path)
    code, _, err = cli(
        capsys,
        *("train", str(path), "--target", "churned", "--id", "customer_id"),
        *("--split", "time", "--time-col", "snapshot", *FAST),
    )
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "two distinct dates" in err
    registry = Registry(Settings())
    assert registry.list_models() == []
    runs = registry.client.search_runs(
        [e.experiment_id for e in registry.client.search_experiments()]
    )
    assert runs and all(r.info.status == "FAILED" for r in runs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "{missing}", "--target", "churned"], "no such file"),
        (["train", "{csv}", "--target", "nope"], "nope"),
        (["train", "{csv}", "--target", "churned", "--split", "weekly"], "--split"),
        (["train", "{csv}", "--target", "churned", "--cv", "1"], "--cv"),
        (["train", "{csv}", "--target", "churned", "--no-register"], "--out"),
        (["train", "{csv}", "--target", "churned", "--out", "{csv}"], "--out"),
        (["train", "{csv}", "--target", "churned", "--learning-rate", "0"], "learning_rate"),
        (["train", "{csv}", "--target", "churned", "--class-weight", "x"], "class_weight"),
        (["train", "{csv}", "--target", "churned", "--params", "{missing}"], "--params"),
        (["train", "{csv}", "--target", "churned", "--params", "{badparams}"], "--params"),
        (["train", "{csv}", "--target", "churned", "--cv", "3", "--cluster", "local:2"], "--cv"),
        (["train", "{csv}", "--target", "churned", "--init-model", "churn@nope"], "churn@nope"),
        (["train", "{csv}", "--target", "churned", "--init-model", "../x/"], "../x/"),
        (["train", "{csv}", "--target", "churned", "--cluster", "udp://x"], "--cluster"),
        (["train", "{csv}", "--target", "churned", "--time-budget", "60", "--cv", "3"], "--cv"),
        (["train", "{csv}", "--target", "churned", "--time-budget", "5"], "--time-budget"),
        (["evaluate", "churn/7", "{csv}"], "churn/7"),
        (["evaluate", "{missing}/", "{csv}"], "no bundle"),
    ],
)
def test_error_paths_are_one_line(
    home: Path,
    raw: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    bad_params = tmp_path / "params.yaml"
    bad_params.write_text("learning_rat: 0.1\n")
    values = {
        "{missing}": str(tmp_path / "missing.csv"),
        "{csv}": str(raw / "a.csv"),
        "{badparams}": str(bad_params),
    }
    filled = [values.get(a, a) for a in args]
    filled = [a.replace("{missing}", str(tmp_path / "missing")) for a in filled]
    code, _, err = cli(capsys, *filled)
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert "Traceback" not in err


def test_evaluate_errors_on_unlabelled_data_and_bad_value_column(
    home: Path, raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys,
        *("train", str(raw / "b.parquet"), "--target", "churned", "--id", "customer_id"),
        *("--no-register", "--out", str(tmp_path / "m"), *FAST),
    )
    assert code == 0, err
    unlabelled = tmp_path / "u.parquet"
    write_batches(generate_table(500, seed=1).drop_columns(["churned"]).to_batches(), unlabelled)
    for args, message in (
        (["evaluate", str(tmp_path / "m"), str(unlabelled)], "churned"),
        (["evaluate", str(tmp_path / "m"), str(raw / "b.parquet"), "--value-col", "plan"], "value"),
        (
            ["evaluate", str(tmp_path / "m"), str(raw / "b.parquet"), "--report", str(tmp_path)],
            "report",
        ),
    ):
        code, _, err = cli(capsys, *args)
        assert code == 2, err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert message in err, err


def test_mlp_is_trained_evaluated_and_registered(
    home: Path, raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from churnscale.neural import MlpModel

    code, out, err = cli(
        capsys,
        *("train", str(raw / "b.parquet"), "--target", "churned", "--id", "customer_id"),
        *("--model", "mlp", "--workers", "1", "--name", "churn-mlp", "--json"),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "churn-mlp/1"
    assert 0.7 < summary["metrics"]["roc_auc"] < 0.97
    assert summary["top_features"] == []  # no tree contributions for the MLP
    registry = Registry(Settings())
    model = MlpModel.load(registry.resolve("churn-mlp/1"))
    assert model.metadata["metrics"]["roc_auc"] == pytest.approx(summary["metrics"]["roc_auc"])
    code, _, err = cli(capsys, "train", str(raw / "b.parquet"), "--model", "mlp", "--cv", "3")
    assert code == 2 and "--cv" in err and len(err.strip().splitlines()) == 1, err
