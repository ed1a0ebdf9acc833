"""Monotone constraints on point-in-time features: what the spec declares reaches LightGBM,
and a trained model's churn score moves one way only along each constrained feature."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from churnscale.cli import main
from churnscale.data.events import generate_events_table
from churnscale.data.store import iter_dataset, load_info
from churnscale.features.builder import build_features
from churnscale.features.sources import BuildSources
from churnscale.features.spec import FeatureSpec, monotone_constraints
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.distributed import _sklearn_params, train_distributed
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import time_split_for

SPEC = FeatureSpec(windows=(7, 30), horizon=90)
LATEST = date(2026, 6, 30)
FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


def test_directions_of_the_default_spec() -> None:
    directions = SPEC.monotone_directions()
    assert directions["recency_days"] == 1 and directions["recency_days_payment"] == 1
    for name in ("count_total", "active_days_30d", "count_7d", "count_usage_30d"):
        assert directions[name] == -1, name
    assert directions["amount_total_payment"] == -1 and directions["amount_usage_7d"] == -1
    free = {"tenure_days", "gap_mean_days", "count_trend_30d", "amount_mean_payment"}
    free |= {"count_support_ticket_7d", "recency_days_support_ticket", "recency_days_login"}
    assert not free & set(directions)
    assert set(directions) <= set(SPEC.feature_names())


def test_constraints_follow_the_model_inputs_and_only_for_built_datasets() -> None:
    metadata = {"feature_spec": SPEC.to_dict()}
    names = ["plan", "recency_days", "count_7d", "tenure_days"]
    assert monotone_constraints(metadata, names) == [0, 1, -1, 0]
    assert monotone_constraints(metadata, ["plan", "tenure_days"]) is None
    assert monotone_constraints({}, names) is None
    assert TrainParams().lightgbm_params([0, 1])["monotone_constraints"] == [0, 1]
    assert "monotone_constraints" not in TrainParams(monotone=False).lightgbm_params([0, 1])
    dask = _sklearn_params(TrainParams(), time_out_minutes=1, constraints=[1, -1])
    assert dask["monotone_constraints"] == [1, -1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("monotone")
    pq.write_table(generate_events_table(1500, 5), root / "events.parquet")
    build_features(
        BuildSources(str(root / "events.parquet")),
        root / "ds",
        as_of=[date(2026, 5, 1), LATEST],
        spec=SPEC,
    )
    table = pa.Table.from_batches(list(iter_dataset(root / "ds")))
    return root / "ds", table.filter(pc.equal(table["as_of"], pa.scalar(LATEST)))


def _sweep(model: LightGBMModel, rows: pa.Table, name: str) -> np.ndarray:
    """Scores of ``rows`` (columns) with ``name`` set to each of its quantiles (rows)."""
    values = np.nanquantile(rows[name].to_numpy(zero_copy_only=False), np.linspace(0, 1, 15))
    column = rows.schema.get_field_index(name)
    return np.stack(
        [
            model.predict_proba(rows.set_column(column, name, pa.array(np.full(len(rows), v))))
            for v in values
        ]
    )


def _assert_one_way(model: LightGBMModel, rows: pa.Table) -> None:
    """No row's score moves against the declared direction of any constrained feature."""
    for name, sign in SPEC.monotone_directions().items():
        steps = np.diff(_sweep(model, rows, name), axis=0) * sign
        assert steps.min() >= -1e-12, f"{name}: the score moved against its direction"


def test_a_trained_model_moves_one_way_along_each_constrained_feature(
    built: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    dataset, rows = built
    schema, _ = load_info(dataset)
    result = train_local(dataset, split=time_split_for(schema), params=FAST)
    model = LightGBMModel.load(result.model.save(tmp_path / "model"))
    expected = monotone_constraints(schema.metadata, model.preprocessor.feature_names)
    assert expected is not None
    saved = model.booster.params["monotone_constraints"]
    assert [int(v) for v in saved] == expected  # kept in the bundle's LightGBM text
    sample = rows.slice(0, 300)
    directions = SPEC.monotone_directions()
    used = {n for n, v in model.importance().items() if v > 0} & set(directions)
    assert len(used) >= 3  # the checks below bite on features the trees split on
    _assert_one_way(model, sample)


def test_dask_training_applies_the_same_constraints(built: tuple[Path, pa.Table]) -> None:
    dataset, rows = built
    schema, _ = load_info(dataset)
    split = time_split_for(schema)
    result = train_distributed(
        dataset, cluster="local:1", split=split, params=FAST, memory_limit="1GiB"
    )
    model = result.model
    expected = monotone_constraints(schema.metadata, model.preprocessor.feature_names)
    assert [int(v) for v in model.booster.params["monotone_constraints"]] == expected
    assert model.metadata["feature_spec"] == schema.metadata["feature_spec"]  # serves events
    sample = rows.slice(0, 300)
    _assert_one_way(model, sample)


def test_monotone_off_trains_without_constraints(built: tuple[Path, pa.Table]) -> None:
    dataset, _ = built
    schema, _ = load_info(dataset)
    params = TrainParams(learning_rate=0.2, max_rounds=10, early_stopping_rounds=5, monotone=False)
    result = train_local(dataset, split=time_split_for(schema), params=params)
    booster: lgb.Booster = result.model.booster
    assert "monotone_constraints" not in booster.params


@pytest.mark.parametrize(("flag", "constrained"), [("--monotone", True), ("--no-monotone", False)])
def test_train_cli_flag(
    built: tuple[Path, pa.Table],
    tmp_path: Path,
    flag: str,
    constrained: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset, _ = built
    out = tmp_path / "bundle"
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "argv", ["churnscale", "train", str(dataset), "--split", "time",
                        "--no-register", "--out", str(out), "--json", flag,
                        "--learning-rate", "0.2", "--max-rounds", "10"])  # fmt: skip
    try:
        main()
    except SystemExit as exc:  # only on an error
        pytest.fail(f"churnscale train exited with {exc.code}")
    model = LightGBMModel.load(out)
    assert ("monotone_constraints" in model.booster.params) is constrained
    assert model.metadata["params"]["monotone"] is constrained
