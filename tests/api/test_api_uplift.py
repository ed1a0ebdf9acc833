from __future__ import annotations

from pathlib import Path

import pytest

import churnscale
from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.exceptions import ConfigError
from churnscale.model.uplift import UpliftModel


def test_train_uplift_from_a_table_in_memory(tmp_path: Path) -> None:
    table = generate_table(3_000, 8, treatment=True)
    outcome = churnscale.train_uplift(
        table,
        treatment_col="offer",
        treatment="offer",
        control="no_offer",
        target="retained",
        drop=["true_uplift"],
        learner="t",
        settings=Settings(home=tmp_path),
    )
    model = outcome.result.model
    assert isinstance(model, UpliftModel) and model.learner == "t"
    summary = outcome.summary()
    assert summary["rows"]["train"] + summary["rows"]["test"] == 3_000
    assert summary["holdout"]["ate_interval"][0] < summary["holdout"]["ate"]
    assert outcome.report.read_text().count("Qini curve") == 1
    with pytest.raises(ConfigError, match="--learner"):
        churnscale.train_uplift(
            table,
            treatment_col="offer",
            treatment="offer",
            control="no_offer",
            learner="z",
            settings=Settings(home=tmp_path),
        )
