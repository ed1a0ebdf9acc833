"""Data-parallel training: two processes reach the one-process weights on disjoint shards."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from churnscale.exceptions import ConfigError, SchemaError
from churnscale.neural import MlpParams, MlpTrainResult, fit_mlp
from churnscale.neural.shards import read_shard, shard_range

#: Largest weight difference allowed between 1 and 2 processes after the same steps: float32
#: sums taken in a different order (the gradient all-reduce) drift by ~1e-6 per step.
WEIGHT_TOLERANCE = 1e-3


def _state(result: MlpTrainResult) -> dict[str, torch.Tensor]:
    return {k: v for k, v in result.model.network.state_dict().items() if v.is_floating_point()}


def test_two_processes_reach_the_one_process_weights(
    one_process: MlpTrainResult, two_processes: MlpTrainResult
) -> None:
    assert [h["epoch"] for h in two_processes.history] == [h["epoch"] for h in one_process.history]
    one, two = _state(one_process), _state(two_processes)
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst <= WEIGHT_TOLERANCE
    moved = max(float(v.abs().max()) for k, v in one.items() if k.startswith("mlp."))
    assert moved > 0.05  # the weights are trained, not left near zero
    losses = [h["valid_loss"] for h in one_process.history]
    np.testing.assert_allclose([h["valid_loss"] for h in two_processes.history], losses, rtol=1e-4)


def test_ranks_read_disjoint_shards_covering_the_training_side(
    one_process: MlpTrainResult, two_processes: MlpTrainResult
) -> None:
    first, second = two_processes.shards
    total = two_processes.rows["train"]
    assert (first["start"], first["stop"], second["start"], second["stop"]) == (
        0,
        first["stop"],
        first["stop"],
        total,
    )
    assert 0 < first["rows"] < total and first["rows"] + second["rows"] == total
    assert first["rows"] == first["stop"] - first["start"]
    (whole,) = one_process.shards
    assert whole["rows"] == total
    assert first["positives"] + second["positives"] == whole["positives"] > 0


def test_learns_something_real(two_processes: MlpTrainResult) -> None:
    assert roc_auc_score(two_processes.y_holdout, two_processes.scores) > 0.75
    assert two_processes.model.metadata["workers"] == 2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (MlpParams(hidden=[]), "hidden: expected one or more sizes"),
        (MlpParams(learning_rate=0.0), "learning_rate: expected a number in"),
        (MlpParams(dropout=1.0), "dropout: expected a number in"),
        (MlpParams(batch_size=0), "batch_size: expected at least 1"),
    ],
)
def test_bad_params_are_refused(mlp_dataset: Path, params: MlpParams, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        fit_mlp(mlp_dataset, params=params)


def test_bad_worker_counts_are_refused(mlp_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="--workers: expected at least 1, got 0"):
        fit_mlp(mlp_dataset, workers=0)
    with pytest.raises(ConfigError, match="--workers: expected at most the"):
        fit_mlp(mlp_dataset, workers=10**6)


def test_a_dataset_without_target_is_refused(tmp_path: Path) -> None:
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import generate_table
    from churnscale.data.writers import write_batches

    write_batches(
        generate_table(200, 1).drop_columns(["churned"]).to_batches(), tmp_path / "r.parquet"
    )
    ingest(str(tmp_path / "r.parquet"), tmp_path / "ds")
    with pytest.raises(SchemaError, match="no target column"):
        fit_mlp(tmp_path / "ds")


@given(total=st.integers(0, 10_000), world=st.integers(1, 64))
def test_shard_ranges_are_disjoint_and_cover_every_row(total: int, world: int) -> None:
    ranges = [shard_range(total, rank, world) for rank in range(world)]
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("world", [2, 3])
def test_shards_read_back_to_back_equal_the_whole_side(mlp_dataset: Path, world: int) -> None:
    from churnscale.data.store import load_info
    from churnscale.training.local import EARLY_STOP_FRACTION, fit_preprocessor
    from churnscale.training.plan import TRAIN, SplitSpec, plan_split

    schema, _ = load_info(mlp_dataset)
    plan = plan_split(mlp_dataset, schema, SplitSpec(), early_stop_fraction=EARLY_STOP_FRACTION)
    pre = fit_preprocessor(plan, schema)
    whole = read_shard(plan, TRAIN, pre, target="churned", rank=0, world=1)
    parts = [
        read_shard(plan, TRAIN, pre, target="churned", rank=r, world=world) for r in range(world)
    ]
    np.testing.assert_array_equal(np.concatenate([p.features for p in parts]), whole.features)
    np.testing.assert_array_equal(np.concatenate([p.labels for p in parts]), whole.labels)
    np.testing.assert_array_equal(whole.labels, plan.labels[TRAIN])
