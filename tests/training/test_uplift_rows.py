from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, iter_dataset
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.features.preprocessor import Preprocessor
from churnscale.training.local import fit_preprocessor
from churnscale.training.plan import TEST, TRAIN
from churnscale.training.uplift import UpliftSpec, fit_side, read_arms
from churnscale.training.uplift_fit import UpliftParams, fit_uplift
from churnscale.training.uplift_rows import uplift_of_side
from churnscale.training.uplift_split import holdout_sides, strata_of

SMALL = UpliftParams(rounds=25, learning_rate=0.1, min_data_in_leaf=40)


@pytest.fixture(scope="module")
def many_groups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 customers with the offer in row groups of 500, a tenth of them in a third arm."""
    root = tmp_path_factory.mktemp("groups")
    table = generate_table(4_000, 8, treatment=True)
    arm = np.asarray(table.column("offer").to_pylist(), dtype=object)
    arm[np.arange(arm.size) % 10 == 7] = "sms"
    table = table.set_column(table.schema.get_field_index("offer"), "offer", pa.array(arm))
    write_batches(table.to_batches(max_chunksize=500), root / "raw.parquet")
    hints = SchemaHints(target="retained", drop=("true_uplift",))
    ingest(str(root / "raw.parquet"), root / "ds", hints=hints, batch_rows=500)
    return root / "ds"


def _in_memory(dataset: Path, spec: UpliftSpec) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The two arms' rows read whole, as the trainer held them before it streamed."""
    table = pa.Table.from_batches(list(iter_dataset(dataset)))
    arm = np.asarray(table.column("offer").to_pylist(), dtype=object)
    kept = (arm == spec.treatment) | (arm == spec.control)
    table = table.filter(pa.array(kept))
    treated = (arm[kept] == spec.treatment).astype(np.int8)
    return table, treated, table.column("retained").to_numpy().astype(np.int8)


@pytest.mark.parametrize("learner", ["s", "t", "x"])
def test_streamed_learners_equal_the_learners_fitted_in_memory(
    many_groups: Path, learner: str
) -> None:
    spec = UpliftSpec("offer", "offer", "no_offer", learner=learner, params=SMALL)
    schema, rows = read_arms(many_groups, spec)
    assert rows.dropped == {"sms": 400} and len(rows.groups) > 4
    treated, y = rows.values(None)
    sides = holdout_sides(strata_of(treated, y), valid_fraction=0.25, seed=3)
    rows.assign(sides)
    streamed_pre = fit_preprocessor(rows.plan(TRAIN), schema)
    streamed = fit_side(streamed_pre, rows, TRAIN, learner=learner, spec=spec)

    table, t, outcome = _in_memory(many_groups, spec)
    np.testing.assert_array_equal(t, treated)
    np.testing.assert_array_equal(outcome, y)
    train = np.flatnonzero(sides == TRAIN)
    pre = Preprocessor(schema).fit(table.take(train).to_batches())
    matrix = pre.transform(table)
    held = fit_uplift(pre, matrix[train], t[train], y[train], learner=learner, params=SMALL)

    # the running sums may differ in the last bits (other batches); the encoding may not
    np.testing.assert_array_equal(streamed_pre.transform(table), matrix)
    for name, booster in held.boosters.items():
        assert streamed.boosters[name].model_to_string() == booster.model_to_string()
    expected = held.uplift_matrix(matrix[sides == TEST])
    np.testing.assert_array_equal(uplift_of_side(streamed, rows, TEST), expected)


def test_a_fold_inside_the_training_side_leaves_the_hold_out_unused(many_groups: Path) -> None:
    spec = UpliftSpec("offer", "offer", "no_offer", params=SMALL)
    _, rows = read_arms(many_groups, spec)
    treated, y = rows.values(None)
    rows.assign(holdout_sides(strata_of(treated, y), valid_fraction=0.2, seed=0))
    train_t, _ = rows.values(TRAIN)
    inner = rows.within(TRAIN, (np.arange(train_t.size) % 2).astype(np.int8))
    assert inner.values(TEST)[0].size == 0
    assert inner.values(TRAIN)[0].size + inner.values(1)[0].size == train_t.size
    assert rows.values(TEST)[0].size == 720  # the outer rows keep their sides
