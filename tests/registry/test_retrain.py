"""Automated retraining against a real MLflow SQLite store: promote a better challenger, reject
a worse one with the champion alias unchanged, every step in MLflow runs."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, iter_dataset
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError, ModelNotFoundError
from churnscale.monitoring import build_reference
from churnscale.monitoring.simulation import shift_numeric, spread_dates
from churnscale.registry import Registry
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import SplitSpec
from churnscale.training.retrain import RetrainSpec, alias_version, retrain

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)
TIME = "snapshot_date"


def _month(rows: int, seed: int, start: datetime.date) -> pa.Table:
    return spread_dates(generate_table(rows, seed), TIME, start=start, days=30)


@pytest.fixture(scope="module")
def champion_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on June, with its reference."""
    root = tmp_path_factory.mktemp("champion")
    write_batches(_month(8_000, 21, datetime.date(2026, 6, 1)).to_batches(), root / "june.parquet")
    hints = SchemaHints(target="churned", time_column=TIME)
    ingest(str(root / "june.parquet"), root / "june", hints=hints)
    split = SplitSpec(kind="time", time_column=TIME)
    model = train_local(root / "june", split=split, params=FAST).model
    model.reference = build_reference(model, iter_dataset(root / "june"))
    return model.save(root / "bundle")


def _register_champion(registry: Registry, bundle: Path) -> int:
    with registry.run(experiment="train", run_name="champion") as run:
        version = run.register_bundle(bundle, name="churn").version
    registry.promote("churn", version, alias="champion")
    return version


def _write(table: pa.Table, path: Path) -> str:
    write_batches(table.to_batches(), path)
    return str(path)


def test_a_better_challenger_is_promoted(
    registry: Registry, settings: Settings, champion_bundle: Path, tmp_path: Path
) -> None:
    champion = _register_champion(registry, champion_bundle)
    july = _month(6_000, 22, datetime.date(2026, 7, 1))
    # The world moved: the same behaviour is now reported differently, so the champion's
    # thresholds on these two features are wrong, and only July's data can teach the new ones.
    july = shift_numeric(july, "usage_trend", scale=0.5)
    july = shift_numeric(july, "days_since_last_login", offset=20.0)
    spec = RetrainSpec(model="churn@champion", data=_write(july, tmp_path / "july.parquet"))
    outcome = retrain(spec, settings=settings, registry=registry)
    assert outcome.promoted, outcome.summary
    assert outcome.challenger_auc > outcome.champion_auc + 0.005
    assert set(outcome.drifted_features) >= {"usage_trend", "days_since_last_login"}
    assert alias_version(registry, _ref("churn@champion")) == outcome.challenger_version
    assert outcome.challenger_version == champion + 1
    shown = registry.show("churn", outcome.challenger_version)
    assert shown.parent == f"churn/{champion}"
    _check_runs(registry, outcome.run_id, decision="promoted")


def test_a_worse_challenger_is_rejected_and_the_alias_stays(
    registry: Registry, settings: Settings, champion_bundle: Path, tmp_path: Path
) -> None:
    champion = _register_champion(registry, champion_bundle)
    july = _month(6_000, 23, datetime.date(2026, 7, 1))
    # Broken labels on the training part of July (its first three weeks), true labels on the
    # latest week that both models are judged on: a refit challenger learns noise.
    labels = july.column("churned").to_numpy().copy()
    head = int(0.7 * labels.size)
    labels[:head] = np.random.default_rng(5).permutation(labels[:head])
    july = july.set_column(july.column_names.index("churned"), "churned", pa.array(labels))
    spec = RetrainSpec(
        model="churn@champion", data=_write(july, tmp_path / "july.parquet"), mode="refit"
    )
    outcome = retrain(spec, settings=settings, registry=registry)
    assert not outcome.promoted, outcome.summary
    assert outcome.challenger_auc < outcome.champion_auc
    assert alias_version(registry, _ref("churn@champion")) == champion
    assert alias_version(registry, _ref("churn@challenger")) == outcome.challenger_version
    assert outcome.summary.startswith(f"kept churn/{champion} as @champion")
    _check_runs(registry, outcome.run_id, decision="rejected")


def _ref(text: str) -> object:
    from churnscale.registry.references import parse_reference

    return parse_reference(text, allow_paths=False)


def _check_runs(registry: Registry, run_id: str, *, decision: str) -> None:
    parent = registry.client.get_run(run_id)
    assert parent.data.params["decision"] == decision
    assert parent.info.status == "FINISHED"
    assert "psi.usage_trend" in parent.data.metrics
    children = registry.client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"
    )
    names = sorted(c.info.run_name for c in children)
    assert names == ["challenger", "evaluate"]
    evaluate = next(c for c in children if c.info.run_name == "evaluate")
    assert {"champion.roc_auc", "challenger.roc_auc"} <= set(evaluate.data.metrics)


def test_bad_requests_are_clear_errors(registry: Registry, settings: Settings) -> None:
    with pytest.raises(ConfigError, match="--model: expected a registry alias NAME@ALIAS"):
        retrain(RetrainSpec(model="churn/3", data="x"), settings=settings, registry=registry)
    with pytest.raises(ConfigError, match="--margin"):
        retrain(
            RetrainSpec(model="churn@champion", data="x", margin=-1.0),
            settings=settings,
            registry=registry,
        )
    with pytest.raises(ModelNotFoundError, match="churn@champion"):
        retrain(RetrainSpec(model="churn@champion", data="x"), settings=settings, registry=registry)
