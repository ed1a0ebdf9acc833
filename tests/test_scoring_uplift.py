"""Scoring (``churnscale score``) and ``churnscale target`` with an uplift model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.decisions import UpliftDecisions, UpliftPolicy
from churnscale.model.uplift import UpliftModel
from churnscale.scoring import score
from churnscale.scoring.uplift import choose_targets
from churnscale.training.uplift import UpliftSpec, train_uplift
from churnscale.training.uplift_fit import UpliftParams


@pytest.fixture(scope="module")
def model(uplift_dataset: Path) -> UpliftModel:
    params = UpliftParams(rounds=30, learning_rate=0.1, min_data_in_leaf=40)
    spec = UpliftSpec("offer", "offer", "no_offer", learner="s", params=params)
    return train_uplift(uplift_dataset, spec).model


def test_score_writes_uplift_action_and_rank(model: UpliftModel, tmp_path: Path) -> None:
    customers = generate_table(1_000, 17).drop_columns(["churned"])
    write_batches(customers.to_batches(), tmp_path / "c.csv", fmt="csv")
    settings = Settings(
        home=tmp_path / "home", uplift_budget=0.2, uplift_outcome_value=50, uplift_action_cost=1
    )
    info = score(str(tmp_path / "c.csv"), model, tmp_path / "s.parquet", settings=settings)
    assert info.rows == 1_000 and info.rejected == 0
    scored = pq.read_table(tmp_path / "s.parquet")
    assert scored.column_names == [
        "customer_id",
        "churn_probability",
        "p_treated",
        "uplift",
        "expected_value",
        "action",
        "rank",
    ]
    expected = model.predict(customers)
    np.testing.assert_allclose(scored.column("uplift").to_numpy(), expected["uplift"], atol=1e-9)
    value = scored.column("expected_value").to_numpy()
    np.testing.assert_allclose(value, 50 * expected["uplift"] - 1, atol=1e-7)
    rank = scored.column("rank").to_numpy()
    assert sorted(rank) == list(range(1, 1_001))
    assert np.all(np.diff(value[np.argsort(rank)]) <= 0)  # rank 1 = the most value
    decisions = UpliftDecisions(model, UpliftPolicy(action_cost=1, outcome_value=50, budget=0.2))
    treat = (value > 0) & (expected["uplift"] >= decisions.bar)
    assert scored.column("action").to_pylist() == ["treat" if t else "control" for t in treat]
    assert 0.05 < treat.mean() < 0.35


def test_choose_targets_by_value_within_budget_and_cost() -> None:
    value = np.array([3.0, -1.0, 5.0, 0.5, 2.0, 0.0])
    assert choose_targets(value, action_cost=1, budget=None, max_cost=None).tolist() == [2, 0, 4, 3]
    assert choose_targets(value, action_cost=1, budget=2, max_cost=None).tolist() == [2, 0]
    assert choose_targets(value, action_cost=2, budget=None, max_cost=5).tolist() == [2, 0]


def test_target_cli_picks_the_most_valuable_customers(model: UpliftModel, tmp_path: Path) -> None:
    bundle = model.save(tmp_path / "m")
    customers = generate_table(800, 23).drop_columns(["churned"])
    write_batches(customers.to_batches(), tmp_path / "c.parquet")
    env = {
        **os.environ,
        "CHURNSCALE_HOME": str(tmp_path / "home"),
        "CHURNSCALE_UPLIFT_OUTCOME_VALUE": "40",
        "CHURNSCALE_UPLIFT_ACTION_COST": "2",
    }
    args = [
        "target",
        str(tmp_path / "c.parquet"),
        "--model",
        str(bundle),
        "--budget",
        "100",
        "--max-cost",
        "150",
        "--json",
        "--out",
        str(tmp_path / "t.parquet"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    totals = json.loads(done.stdout)
    picked = pq.read_table(tmp_path / "t.parquet")
    uplift = model.predict(customers)["uplift"]
    value = 40 * uplift - 2
    expected = min(75, int((value > 0).sum()))  # 150 / 2 customers at most, worth their cost
    assert totals["treated"] == picked.num_rows == expected
    best = np.sort(value)[::-1][:expected]
    np.testing.assert_allclose(picked.column("expected_value").to_numpy(), best, atol=1e-7)
    assert totals["incremental_outcomes"] == pytest.approx((best + 2).sum() / 40, rel=1e-6)
    assert totals["cost"] == 2 * expected
