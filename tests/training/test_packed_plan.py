"""The split plan's one byte a row (side and label packed), and LightGBM binning both sides
before its booster exists: the same sides, labels and trees as reading them unpacked."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from churnscale.data.schema import ColumnSpec, Role, Schema, SchemaHints
from churnscale.data.store import ingest, load_info
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import SchemaError
from churnscale.features.names import lightgbm_names
from churnscale.training.local import TrainParams, data_params, fit_preprocessor, train_local
from churnscale.training.plan import (
    TEST,
    TRAIN,
    UNUSED,
    VALID,
    RowGroup,
    SplitPlan,
    SplitSpec,
    plan_split,
)
from churnscale.training.sequence import SideSequence

PARAMS = TrainParams(learning_rate=0.2, max_rounds=6, early_stopping_rounds=6, threads=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packed")
    write_batches(generate_table(6_000, 5).to_batches(max_chunksize=1_000), root / "r.parquet")
    hints = SchemaHints(target="churned")
    ingest(str(root / "r.parquet"), root / "ds", hints=hints, batch_rows=1_000)
    return root / "ds"


@given(
    sides=arrays(np.int8, st.integers(0, 300), elements=st.integers(TRAIN, UNUSED)),
    seed=st.integers(0, 2**32 - 1),
)
def test_side_and_label_round_trip_through_the_packed_byte(sides: np.ndarray, seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 2, sides.size).astype(np.int8)
    group = RowGroup.of(Path("g.parquet"), 0, sides, labels)
    assert group.packed.dtype == np.uint8 and group.packed.nbytes == sides.size
    np.testing.assert_array_equal(group.sides, sides)
    np.testing.assert_array_equal(group.labels, labels)
    plan = SplitPlan([group, RowGroup.of(Path("h.parquet"), 1, sides[::-1], labels)])
    for side in (TRAIN, VALID, TEST, UNUSED):
        np.testing.assert_array_equal(group.on(side), sides == side)
        expected = np.concatenate([labels[sides == side], labels[sides[::-1] == side]])
        np.testing.assert_array_equal(plan.labels[side], expected.astype(np.float32))
        assert plan.count(side) == expected.size
    group.sides = np.full(sides.size, TEST, dtype=np.int8)  # a refit moves every row
    np.testing.assert_array_equal(group.labels, labels)


def test_the_plan_holds_the_stored_sides_and_labels(dataset: Path) -> None:
    schema, info = load_info(dataset)
    plan = plan_split(dataset, schema, SplitSpec(seed=4), early_stop_fraction=0.1)
    stored = np.concatenate([pq.read_table(dataset / f).column("churned") for f in info.files])
    np.testing.assert_array_equal(np.concatenate([g.labels for g in plan.groups]), stored)
    sides = np.concatenate([g.sides for g in plan.groups])
    assert set(np.unique(sides).tolist()) == {TRAIN, VALID, TEST}
    for side in (TRAIN, VALID, TEST):
        np.testing.assert_array_equal(plan.labels[side], stored[sides == side])


def test_a_target_outside_zero_and_one_is_refused(dataset: Path) -> None:
    stored, _ = load_info(dataset)
    counts = "support_tickets_90d"  # a count column named as the target: 0, 1, 2, ...
    roles = [
        ColumnSpec(c.name, Role.TARGET if c.name == counts else c.role)
        for c in stored.columns
        if c.name != "churned"
    ]
    with pytest.raises(SchemaError, match=r"'support_tickets_90d': the target must be 0 or 1"):
        plan_split(dataset, Schema(tuple(roles)), SplitSpec())


def test_trees_equal_lightgbm_on_the_whole_encoded_matrices(dataset: Path) -> None:
    """Out-of-core training (packed plan, sides binned before the booster) grows the trees
    that LightGBM grows from the same encoded rows held whole in memory."""
    result = train_local(dataset, params=PARAMS)
    schema, _ = load_info(dataset)
    plan = plan_split(dataset, schema, SplitSpec(seed=PARAMS.seed), early_stop_fraction=0.1)
    pre = fit_preprocessor(plan, schema)
    params = PARAMS.lightgbm_params()
    names = lightgbm_names(pre.feature_names)
    sets = {}
    for side in (TRAIN, VALID):
        sequence = SideSequence(plan, side, pre)
        sets[side] = lgb.Dataset(
            sequence[0 : len(sequence)],
            label=plan.labels[side],
            feature_name=names,
            categorical_feature=pre.categorical_indices,
            params=data_params(params),
            reference=sets.get(TRAIN),
        )
    booster = lgb.train(params, sets[TRAIN], num_boost_round=PARAMS.max_rounds)
    expected = booster.model_to_string(num_iteration=-1)
    got = result.model.booster.model_to_string(num_iteration=-1)
    assert got.count("Tree=") == PARAMS.max_rounds
    assert _trees(got) == _trees(expected)


def _trees(model_text: str) -> str:
    return model_text[model_text.index("Tree=0") : model_text.index("end of trees")]
