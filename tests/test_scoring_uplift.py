"""``churnscale score`` with an uplift model: uplift, action and rank per customer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.decisions import UpliftDecisions, UpliftPolicy
from churnscale.training.uplift import UpliftSpec, train_uplift
from churnscale.training.uplift_fit import UpliftParams


def test_score_writes_uplift_action_and_rank(uplift_dataset: Path, tmp_path: Path) -> None:
    params = UpliftParams(rounds=30, learning_rate=0.1, min_data_in_leaf=40)
    model = train_uplift(
        uplift_dataset, UpliftSpec("offer", "offer", "no_offer", learner="s", params=params)
    ).model
    bundle = model.save(tmp_path / "m")
    customers = generate_table(1_000, 17).drop_columns(["churned"])
    write_batches(customers.to_batches(), tmp_path / "c.csv", fmt="csv")
    env = {
        **os.environ,
        "CHURNSCALE_HOME": str(tmp_path / "home"),
        "CHURNSCALE_UPLIFT_BUDGET": "0.2",
        "CHURNSCALE_UPLIFT_OUTCOME_VALUE": "50",
        "CHURNSCALE_UPLIFT_ACTION_COST": "1",
    }
    args = [
        "score",
        str(tmp_path / "c.csv"),
        "--model",
        str(bundle),
        "--out",
        str(tmp_path / "s.parquet"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
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
    assert scored.column("action").to_pylist() == ["treat" if t else "none" for t in treat]
    assert 0.05 < treat.mean() < 0.35
