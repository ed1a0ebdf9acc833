from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError
from churnscale.model import load_bundle
from churnscale.model.uplift import UpliftModel
from churnscale.training.uplift import UpliftSpec, train_uplift
from churnscale.training.uplift_fit import UpliftParams

SMALL = UpliftParams(rounds=40, learning_rate=0.1, min_data_in_leaf=40)


@pytest.fixture(scope="module")
def three_arms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 customers with the offer, 600 of them moved to a third arm (``sms``)."""
    root = tmp_path_factory.mktemp("arms")
    table = generate_table(6_000, 4, treatment=True)
    arm = np.asarray(table.column("offer").to_pylist(), dtype=object)
    arm[np.arange(arm.size) % 10 == 3] = "sms"
    table = table.set_column(table.schema.get_field_index("offer"), "offer", pa.array(arm))
    write_batches(table.to_batches(), root / "raw.parquet")
    ingest(
        str(root / "raw.parquet"),
        root / "ds",
        hints=SchemaHints(target="retained", drop=("true_uplift",)),
    )
    return root / "ds"


def test_auto_picks_the_best_cross_validated_learner_and_filters_other_arms(
    three_arms: Path,
) -> None:
    spec = UpliftSpec("offer", "offer", "no_offer", folds=2, params=SMALL)
    result = train_uplift(three_arms, spec)
    assert result.dropped == {"sms": 600}
    assert result.rows["train"] + result.rows["test"] == 5_400
    assert set(result.cv) == {"s", "t", "x"} and all(len(v) == 2 for v in result.cv.values())
    best = max(result.cv, key=lambda name: float(np.mean(result.cv[name])))
    assert result.model.learner == best
    # the learned uplift follows the true effect on customers it never saw
    fresh = generate_table(3_000, 99, treatment=True)
    predicted = result.model.predict(fresh)["uplift"]
    assert np.corrcoef(predicted, fresh.column("true_uplift").to_numpy())[0, 1] > 0.5
    assert result.holdout.qini > 0


@pytest.mark.parametrize("learner", ["s", "t", "x"])
def test_each_learner_round_trips_its_bundle(
    uplift_dataset: Path, tmp_path: Path, learner: str
) -> None:
    spec = UpliftSpec("offer", "offer", "no_offer", learner=learner, params=SMALL)
    model = train_uplift(uplift_dataset, spec).model
    loaded = load_bundle(model.save(tmp_path / "b"))
    assert isinstance(loaded, UpliftModel) and loaded.learner == learner
    customers = generate_table(200, 5)
    out, back = model.predict(customers), loaded.predict(customers)
    for name in model.outputs:
        np.testing.assert_array_equal(out[name], back[name])
    np.testing.assert_allclose(out["p_treated"] - out["p_control"], out["uplift"], atol=1e-12)
    one = loaded.predict_one(customers.to_pylist()[3])
    assert one["uplift"] == pytest.approx(out["uplift"][3], abs=1e-9)


def test_an_unknown_arm_value_is_refused_with_the_values(uplift_dataset: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"--control: expected a value of offer: \['no_offer', 'offer'\], got 'none'",
    ):
        train_uplift(uplift_dataset, UpliftSpec("offer", "offer", "none"))
    with pytest.raises(ConfigError, match="--learner"):
        train_uplift(uplift_dataset, UpliftSpec("offer", "offer", "no_offer", learner="r"))


def test_train_cli_trains_an_uplift_model(uplift_dataset: Path, tmp_path: Path) -> None:
    args = [
        "train",
        str(uplift_dataset),
        "--treatment-col",
        "offer",
        "--treatment",
        "offer",
        "--control",
        "no_offer",
        "--learner",
        "t",
        "--threads",
        "1",
        "--json",
        "--no-register",
        "--out",
        str(tmp_path / "m"),
        "--report",
        str(tmp_path / "r.html"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CHURNSCALE_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["model_type"] == "uplift" and summary["learner"] == "t"
    holdout = summary["holdout"]
    assert {"qini", "auuc", "uplift_at_30", "ate", "ate_interval", "deciles", "targeting"} <= set(
        holdout
    )
    assert holdout["ate_interval"][0] < holdout["ate"] < holdout["ate_interval"][1]
    page = (tmp_path / "r.html").read_text()
    assert "Qini curve" in page and "Uplift by decile" in page
    assert isinstance(load_bundle(tmp_path / "m"), UpliftModel)
    half = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnscale",
            "train",
            str(uplift_dataset),
            "--treatment-col",
            "offer",
            "--treatment",
            "offer",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert half.returncode == 2 and "--control" in half.stderr
