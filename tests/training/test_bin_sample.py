"""LightGBM's bin sample kept during the Preprocessor's fit: the same model, one read less."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, load_info
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.features.preprocessor import Preprocessor
from churnscale.training import local
from churnscale.training.local import TrainParams, fit_preprocessor, train_local
from churnscale.training.plan import TRAIN, SplitPlan, SplitSpec, plan_split
from churnscale.training.sequence import BinSample, SideSequence, fit_with_bin_sample

PARAMS = TrainParams(learning_rate=0.2, max_rounds=6, early_stopping_rounds=3, threads=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bins")
    write_batches(generate_table(6_000, 4).to_batches(max_chunksize=1_000), root / "r.parquet")
    hints = SchemaHints(target="churned")
    ingest(str(root / "r.parquet"), root / "ds", hints=hints, batch_rows=1_000)
    return root / "ds"


def test_the_kept_sample_equals_the_rows_read_again(dataset: Path) -> None:
    schema, _ = load_info(dataset)
    plan = plan_split(dataset, schema, SplitSpec(seed=2), early_stop_fraction=0.1)
    rows = plan.count(TRAIN)
    indices = np.sort(np.random.default_rng(3).choice(rows, 500, replace=False))
    pre, sample = fit_with_bin_sample(plan, schema, indices)
    assert pre.to_dict() == fit_preprocessor(plan, schema).to_dict()
    sequence = SideSequence(plan, TRAIN, pre)
    assert len(sequence.groups) > 3 and sample.rows is not None
    np.testing.assert_array_equal(sample.rows, sequence[0:rows][indices])


def _without_kept_sample(
    plan: SplitPlan, schema: object, indices: np.ndarray
) -> tuple[Preprocessor, BinSample | None]:
    """The former way: fit only; the Dataset reads its bin sample again (``expect_sample``)."""
    return fit_preprocessor(plan, schema), None  # type: ignore[arg-type]


def test_trees_are_byte_identical_to_reading_the_sample_again(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = train_local(dataset, params=PARAMS).model.booster.model_to_string()
    monkeypatch.setattr(local, "fit_with_bin_sample", _without_kept_sample)
    again = train_local(dataset, params=PARAMS).model.booster.model_to_string()
    assert kept == again
    assert "Tree=3" in kept
