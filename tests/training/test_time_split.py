from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from stacked import DATES, stacked_dataset

from churnscale.data.store import iter_dataset, load_info
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import (
    LATEST,
    TEST,
    TRAIN,
    UNUSED,
    VALID,
    SplitSpec,
    plan_split,
    time_split_for,
)

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stacked_dataset(tmp_path_factory.mktemp("stacked"))


def _dates_by_side(dataset: Path, split: SplitSpec) -> dict[int, set[str]]:
    schema, _ = load_info(dataset)
    plan = plan_split(dataset, schema, split, early_stop_fraction=0.1)
    table = pa.Table.from_batches(list(iter_dataset(dataset)))
    days = np.datetime_as_string(table["as_of"].to_numpy(), "D")
    sides = np.concatenate([g.sides for g in plan.groups])
    return {s: set(days[sides == s]) for s in (TRAIN, VALID, TEST, UNUSED)}


def test_time_split_of_an_as_of_dataset_holds_out_the_whole_latest_date(dataset: Path) -> None:
    schema, _ = load_info(dataset)
    split = time_split_for(schema)
    assert split == SplitSpec("time", time_column="as_of", holdout_date=LATEST)
    sides = _dates_by_side(dataset, split)
    assert sides[TEST] == {DATES[-1]}
    assert sides[TRAIN] == sides[VALID] == set(DATES[:-1]) and sides[UNUSED] == set()
    result = train_local(dataset, split=split, params=FAST)
    latest = pa.Table.from_batches(list(iter_dataset(dataset))).filter(
        pc.equal(pc.strftime(pc.field("as_of"), "%Y-%m-%d"), DATES[-1])
    )
    assert result.rows["test"] == latest.num_rows == 600
    np.testing.assert_array_equal(np.sort(result.y_holdout), np.sort(latest["churned"].to_numpy()))
    assert result.model.metadata["split"]["holdout_date"] == LATEST


def test_a_date_window_leaves_later_and_earlier_dates_unused(dataset: Path) -> None:
    split = SplitSpec(
        "time", time_column="as_of", holdout_date=DATES[2], train_from=DATES[1],
        train_until=DATES[1],
    )  # fmt: skip
    sides = _dates_by_side(dataset, split)
    assert sides[TEST] == {DATES[2]} and sides[TRAIN] == {DATES[1]}
    assert sides[UNUSED] == {DATES[0], DATES[3]}


def test_time_split_with_a_named_column_or_none(dataset: Path) -> None:
    schema, _ = load_info(dataset)
    named = time_split_for(schema, time_column="as_of", valid_fraction=0.3, seed=4)
    assert named == SplitSpec("time", 0.3, time_column="as_of", seed=4)
    plain = replace(schema, as_of_column=None, time_column=None)
    with pytest.raises(ConfigError, match=r"--time-col: expected a date column"):
        time_split_for(plain)
    with pytest.raises(SchemaError, match=r"missing columns: when"):
        time_split_for(plain, time_column="when")
    with pytest.raises(ConfigError, match=r"holdout_date: expected an ISO date or 'latest'"):
        SplitSpec("time", holdout_date="last tuesday")


def test_time_split_refuses_a_missing_date_or_a_single_date(tmp_path: Path) -> None:
    one = stacked_dataset(tmp_path, dates=(DATES[0],), rows=50)
    schema, _ = load_info(one)
    with pytest.raises(SchemaError, match=r"no rows before the held-out date 2026-01-01"):
        plan_split(one, schema, time_split_for(schema))
    missing = SplitSpec("time", time_column="as_of", holdout_date="2025-05-05")
    with pytest.raises(SchemaError, match=r"no rows at the held-out date 2025-05-05"):
        plan_split(one, schema, missing)
