"""``churnscale tune``: a real Optuna study on SQLite, a real MLflow store, a real Dask cluster."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, load_info
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError, SchemaError, SourceError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry
from churnscale.training.local import TrainParams
from churnscale.training.plan import (
    LEFT_OUT,
    TEST,
    TRAIN,
    VALID,
    Exclusion,
    SplitSpec,
    plan_split,
)
from churnscale.training.search import open_storage
from churnscale.training.tune import (
    TuneResult,
    TuneSpec,
    prepare_study,
    storage_url,
    train_best,
    tune,
)

#: Every trial runs all 80 rounds, so the pruner has values to compare at every reported step.
BASE = TrainParams(max_rounds=80, early_stopping_rounds=80, threads=1)
SPEC = TuneSpec(trials=2, cv=2, base=BASE, study="t")
BAD = {
    "learning_rate": 0.01,
    "num_leaves": 4,
    "min_child_samples": 200,
    "feature_fraction": 0.3,
    "bagging_fraction": 0.5,
    "lambda_l2": 100.0,
    "class_weight": "none",
    "min_gain_to_split": 1.0,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tune")
    write_batches(generate_table(1_500, 11).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    return root / "ds"


@pytest.fixture
def settings(tmp_path: Path, migrated_store: Path) -> Settings:
    """A project home holding a copy of the migrated MLflow store (migrating is slow)."""
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(migrated_store) as source, sqlite3.connect(home / "mlflow.db") as target:
        source.backup(target)
    source.close()
    target.close()
    return Settings(home=home, tracking_uri=None)


def _children(settings: Settings, result: TuneResult) -> list[Any]:
    client = Registry(settings).client
    experiment = client.get_experiment_by_name(SPEC.experiment).experiment_id
    where = f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    return list(client.search_runs([experiment], filter_string=where, max_results=100))


def _study(settings: Settings, name: str = "t") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage_url(settings)))


def test_tuning_never_sees_the_final_hold_out(dataset: Path) -> None:
    schema, _ = load_info(dataset)
    outer = plan_split(dataset, schema, SplitSpec(seed=0), early_stop_fraction=0.1)
    inner = plan_split(
        dataset,
        schema,
        SplitSpec(seed=1),
        folds=2,
        fold=0,
        early_stop_fraction=0.1,
        exclude=Exclusion.holdout_of(SplitSpec(seed=0)),
    )
    held = np.concatenate([g.sides for g in outer.groups]) == TEST
    left_out = np.concatenate([g.sides for g in inner.groups]) == LEFT_OUT
    np.testing.assert_array_equal(held, left_out)
    assert 0.1 < left_out.mean() < 0.3
    assert sum(inner.labels[side].size for side in (TRAIN, VALID, TEST)) == (~left_out).sum()


def test_trials_are_nested_runs_and_a_second_run_resumes(dataset: Path, settings: Settings) -> None:
    first = tune(dataset, SPEC, settings)
    assert [r.number for r in first.records] == [0, 1]
    assert first.records[0].params["learning_rate"] == BASE.learning_rate  # defaults first
    children = _children(settings, first)
    assert sorted(c.data.tags["optuna.trial"] for c in children) == ["0", "1"]
    assert all(c.info.status == "FINISHED" for c in children)
    assert all(len(c.data.params) == 8 for c in children)
    assert first.version is not None and first.version.version == 1

    second = tune(dataset, SPEC, settings)
    assert [r.number for r in second.records] == [2, 3]
    assert second.study_trials == 4 and len(_study(settings).trials) == 4
    assert sorted(c.data.tags["optuna.trial"] for c in _children(settings, second)) == ["2", "3"]
    assert second.version is not None and second.version.version == 2
    assert second.best_value >= first.best_value
    _check_registered(settings, dataset, second)


def _check_registered(settings: Settings, dataset: Path, result: TuneResult) -> None:
    """The registered bundle holds the model the best parameters trained."""
    assert result.version is not None
    model = LightGBMModel.load(Registry(settings).resolve(result.version.reference))
    assert model.metadata["params"]["learning_rate"] == result.best_params["learning_rate"]
    assert model.metadata["tuning"]["best_trial"] == result.best_trial
    assert model.metadata["data_fingerprint"] == load_info(dataset)[1].fingerprint
    # registered: refitted on every row; the hold-out AUC came from a model without them
    assert model.metadata["refit"]["rows"] == load_info(dataset)[1].rows
    assert model.metadata["tuning"]["served"]["all_rows"] is True
    parent = Registry(settings).client.get_run(result.parent_run_id)
    assert parent.data.metrics["holdout_auc"] == pytest.approx(result.holdout_auc)
    assert 0.6 < result.holdout_auc <= 1.0


def test_the_best_model_is_refitted_on_every_row_unless_no_refit(dataset: Path) -> None:
    """``tune``'s final model: the hold-out AUC from the model trained without the hold-out,
    then the registered one refitted on every row; ``refit=False`` keeps the evaluated one."""
    best = {"learning_rate": 0.1, "num_leaves": 7}
    served, auc = train_best(dataset, SPEC, best)
    kept, kept_auc = train_best(dataset, replace(SPEC, refit=False), best)
    rows = load_info(dataset)[1].rows
    assert served.metadata["refit"]["rows"] == rows
    assert "refit" not in kept.metadata
    assert kept.metadata["rows"]["train"] + kept.metadata["rows"]["valid"] < rows
    assert auc == kept_auc  # the same evaluated model judged the same hold-out
    assert served.booster.model_to_string() != kept.booster.model_to_string()


def test_a_bad_trial_is_pruned(dataset: Path, settings: Settings) -> None:
    spec = replace(SPEC, trials=3)
    url = storage_url(settings)
    prepare_study(spec, url, "t", load_info(dataset)[1].fingerprint)
    study = _study(settings)
    study.enqueue_trial(
        {
            **BAD,
            "learning_rate": 0.1,
            "num_leaves": 15,
            "min_child_samples": 10,
            "feature_fraction": 0.8,
            "lambda_l2": 1.0,
            "min_gain_to_split": 0.0,
        }
    )
    study.enqueue_trial(BAD)
    result = tune(dataset, spec, settings)
    assert [r.state for r in result.records] == ["COMPLETE", "COMPLETE", "PRUNED"]
    pruned = result.records[2]
    assert pruned.fold_aucs == [] and pruned.curve and pruned.curve[-1][0] < BASE.max_rounds
    run = next(c for c in _children(settings, result) if c.data.tags["optuna.trial"] == "2")
    assert run.info.status == "KILLED" and run.data.tags["optuna.state"] == "PRUNED"
    assert _study(settings).trials[2].state == optuna.trial.TrialState.PRUNED


def test_trials_run_in_parallel_on_a_dask_cluster(dataset: Path, settings: Settings) -> None:
    result = tune(dataset, replace(SPEC, trials=2, cluster="local:2"), settings)
    assert sorted(r.number for r in result.records) == [0, 1]
    assert all(r.state == "COMPLETE" for r in result.records)  # no pruning before 2 complete
    assert len(_children(settings, result)) == 2
    assert result.version is not None and result.version.version == 1


def test_a_resumed_study_must_use_the_same_folds(dataset: Path, settings: Settings) -> None:
    prepare_study(SPEC, storage_url(settings), "t", load_info(dataset)[1].fingerprint)
    with pytest.raises(ConfigError, match=r"study 't': cv: expected 2 as stored"):
        tune(dataset, replace(SPEC, cv=3), settings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trials": 0}, "--trials: expected at least 1"),
        ({"cv": 1}, "--cv: expected 2 to 20 folds"),
        ({"jobs": 0}, "--jobs: expected at least 1"),
        ({"timeout": 0.0}, "--timeout: expected seconds > 0"),
        ({"cluster": "nowhere"}, "--cluster: expected local:N or tcp://HOST:PORT"),
        ({"cluster": "local:2", "jobs": 2}, "--jobs: expected --jobs or --cluster, not both"),
        ({"study": "no spaces"}, "--study: expected a name"),
        ({"base": TrainParams(max_rounds=20)}, "--max-rounds: expected more than 50"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(SPEC, **change).validate()


def test_the_cli_answers_a_bad_flag_in_one_line(
    tmp_path: Path,
    dataset: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from churnscale.cli import main

    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    argv = ["churnscale", "tune", str(dataset), "--target", "churned", "--cv", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --cv: expected 2 to 20 folds, got 1"


def test_a_raw_file_is_ingested_once(tmp_path: Path) -> None:
    from churnscale.config import Settings
    from churnscale.data.cache import stored_dataset

    raw = tmp_path / "c.parquet"
    write_batches(generate_table(300, 2).to_batches(), raw)
    hints = SchemaHints(target="churned")
    settings = Settings(home=tmp_path / "home")
    with stored_dataset(str(raw), settings=settings, hints=hints) as first:
        with stored_dataset(str(raw), settings=settings, hints=hints) as again:
            assert again == first
    assert load_info(first)[0].target == "churned"
    with pytest.raises(SchemaError, match="not 'other'"):
        with stored_dataset(str(first), settings=settings, hints=SchemaHints(target="other")):
            pass
    with pytest.raises(SourceError, match="no such file"):
        with stored_dataset(str(tmp_path / "no.csv"), settings=settings, hints=hints):
            pass
