"""Boosters averaged into one LightGBM model, and the ``--time-budget`` preset that serves it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.predictor import Predictor
from churnscale.training import budget
from churnscale.training.blend import choose, fold_auc, select
from churnscale.training.budget import Candidate, train_with_budget
from churnscale.training.ensemble import merge_models
from churnscale.training.local import TrainParams
from churnscale.training.plan import Exclusion, SplitSpec

ROWS = 1_500


@pytest.fixture(scope="module")
def boosters() -> tuple[list[lgb.Booster], np.ndarray]:
    """Three boosters of different shapes on data with a categorical and missing values."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_000, 5))
    x[:, 4] = rng.integers(0, 6, 1_000)
    x[rng.random(1_000) < 0.1, 2] = np.nan
    y = (x[:, 0] + x[:, 1] ** 2 + (x[:, 4] == 2) + rng.normal(size=1_000) > 1).astype(int)
    data = lgb.Dataset(x, y, categorical_feature=[4], params={"verbosity": -1})
    shapes = [(7, 0, 40), (31, 1, 60), (15, 2, 20)]
    base = {"objective": "binary", "verbosity": -1, "bagging_fraction": 0.8, "bagging_freq": 1}
    trained = [
        lgb.train({**base, "num_leaves": leaves, "seed": seed, "num_threads": 1}, data, rounds)
        for leaves, seed, rounds in shapes
    ]
    return trained, x


def test_merged_model_is_the_weighted_average(
    boosters: tuple[list[lgb.Booster], np.ndarray],
) -> None:
    trained, x = boosters
    weights = [0.5, 0.3, 0.2]
    merged = merge_models(trained, weights)
    raw = sum(w * b.predict(x, raw_score=True) for w, b in zip(weights, trained, strict=True))
    assert merged.num_trees() == sum(b.num_trees() for b in trained)
    np.testing.assert_allclose(merged.predict(x, raw_score=True), raw, atol=1e-12)
    # internal values are scaled too, so SHAP contributions still add up to the raw score
    contributions = merged.predict(x[:50], pred_contrib=True)
    np.testing.assert_allclose(contributions.sum(axis=1), raw[:50], atol=1e-12)
    with pytest.raises(TrainingError, match="one weight per booster"):
        merge_models(trained, [1.0])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("budget")
    table = generate_table(ROWS, seed=5)
    pq.write_table(table, root / "raw.parquet")
    hints = SchemaHints(target="churned", id="customer_id")
    ingest(str(root / "raw.parquet"), root / "ds", hints=hints)
    return root / "ds", table


BASE = TrainParams(learning_rate=0.2, max_rounds=60, early_stopping_rounds=10, threads=1)


def test_budget_serves_one_compiled_model_from_every_row(
    dataset: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    path, table = dataset
    start = time.monotonic()
    outcome = train_with_budget(path, 10, base=BASE, folds=2)
    elapsed = time.monotonic() - start
    assert elapsed < 10 * 1.1 + 1.0  # the time box holds, the final fits included
    served = outcome.served
    assert served.metadata["refit"]["rows"] == ROWS
    assert outcome.evaluated.rows["test"] == outcome.evaluated.y_holdout.size > 0
    assert outcome.evaluated.rows["train"] + outcome.evaluated.rows["test"] == ROWS
    members = served.metadata["ensemble"]
    assert served.booster.num_trees() == sum(m["rounds"] for m in members)
    assert sum(m["weight"] for m in members) == pytest.approx(1.0)
    assert roc_auc_score(outcome.evaluated.y_holdout, outcome.evaluated.scores) > 0.7
    loaded = LightGBMModel.load(served.save(tmp_path / "bundle"))
    text = loaded.booster.model_to_string()
    assert text.count("end of trees") == 1  # one LightGBM model text
    predictor = Predictor(loaded)  # the serving fast path: one compiled model
    matrix = loaded.preprocessor.transform(table.slice(0, 200))
    rows = np.ascontiguousarray(matrix, dtype=np.float64)
    expected = loaded.predict_matrix(rows)
    assert predictor.predict_one(rows[0]) == pytest.approx(expected[0], abs=1e-9)
    np.testing.assert_allclose(predictor.predict_matrix(rows), expected, atol=1e-9)
    with pytest.raises(ConfigError, match="--time-budget"):
        train_with_budget(path, 5)


def test_budget_reports_rows_no_searched_or_evaluated_model_saw(
    dataset: tuple[Path, pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = dataset
    searched: list[Exclusion | None] = []
    fitted: list[Exclusion | None] = []
    real_train, real_fit = budget.train_local, budget._fit

    def spy_train(*args: Any, **kwargs: Any) -> Any:
        searched.append(kwargs.get("exclude"))
        return real_train(*args, **kwargs)

    def spy_fit(*args: Any) -> Any:
        fitted.append(args[-1])
        return real_fit(*args)

    monkeypatch.setattr(budget, "train_local", spy_train)
    monkeypatch.setattr(budget, "_fit", spy_fit)
    outcome = train_with_budget(path, 10, base=BASE, folds=2)
    holdout = Exclusion.holdout_of(SplitSpec(seed=BASE.seed))
    assert searched and all(e == holdout for e in searched)
    assert fitted == [holdout, None]  # evaluated outside the hold-out; served on every row
    assert outcome.summary["search_rows"] + outcome.evaluated.y_holdout.size == ROWS


def _candidate(y: np.ndarray, scores: np.ndarray) -> Candidate:
    return Candidate(TrainParams(), roc_auc_score(y, scores), scores, [10], [100], 1.0)


def test_choose_blends_the_top_candidates_only_when_they_beat_the_defaults() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2_000).astype(float)
    weak = [_candidate(y, y * 0.5 + rng.normal(size=2_000)) for _ in range(2)]
    good = [_candidate(y, y * 1.0 + rng.normal(size=2_000)) for _ in range(3)]
    half = np.arange(2_000) % 2 == 0
    assert sorted(choose([weak[0], *good, weak[1]], y, half)) == [1, 2, 3]
    noisier = [_candidate(y, good[0].oof + 2.0 * rng.normal(size=2_000)) for _ in range(2)]
    assert choose([good[0], *noisier], y, half) == [0]  # the defaults win: served alone
    assert choose([good[0]], y, half) == [0]


def test_greedy_selection_weights_the_better_candidate() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400).astype(float)
    good = y * 2.0 + rng.normal(size=400)
    weak = y * 0.5 + rng.normal(size=400)
    candidates = [_candidate(y, s) for s in (weak, good)]
    picked = select(candidates, y)
    assert picked.get(1, 0) > picked.get(0, 0)


def test_fold_auc_ignores_each_fold_models_score_scale() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 1_000).astype(float)
    folds = np.arange(1_000) % 5
    scores = y + rng.normal(size=1_000)
    shifted = scores + 3.0 * folds  # same ranking within every fold, other scales
    assert fold_auc(y, shifted, folds) == pytest.approx(fold_auc(y, scores, folds))
    assert roc_auc_score(y, shifted) < fold_auc(y, shifted, folds) - 0.05
