from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from churnscale.data.synthetic import generate_table
from churnscale.data.treatment import CONTROL, TREATED


def test_treatment_keeps_the_base_columns_and_adds_a_known_effect() -> None:
    plain = generate_table(6_000, seed=5)
    offered = generate_table(6_000, seed=5, treatment=True)
    for name in plain.column_names:
        if name != "churned":
            assert offered.column(name).equals(plain.column(name)), name
    assert "churned" not in offered.column_names
    uplift = offered.column("true_uplift").to_numpy()
    arm = offered.column("offer").to_numpy(zero_copy_only=False)
    assert set(arm) == {TREATED, CONTROL}
    assert 0.45 < float(np.mean(arm == TREATED)) < 0.55
    # heterogeneous: many respond strongly, many barely, a few react badly
    assert 0.01 < float(np.mean(uplift < 0)) < 0.15
    assert float(np.mean(uplift > 0.1)) > 0.15
    assert float(np.mean(np.abs(uplift) < 0.02)) > 0.2
    # the randomized difference in outcome estimates the mean true effect
    retained = offered.column("retained").to_numpy().astype(float)
    treated = arm == TREATED
    diff = retained[treated].mean() - retained[~treated].mean()
    se = np.sqrt(
        retained[treated].var() / treated.sum() + retained[~treated].var() / (~treated).sum()
    )
    assert abs(diff - uplift.mean()) < 3 * se


def test_generate_cli_writes_the_treatment_columns(tmp_path: Path) -> None:
    out = tmp_path / "offer.parquet"
    args = ["generate", "--rows", "500", "--treatment", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = pq.read_schema(out).names
    assert {"offer", "retained", "true_uplift"} <= set(names) and "churned" not in names
