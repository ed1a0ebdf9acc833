"""The device choice (auto, cpu, cuda), each rank's device and backend, and the device path of
training run on the CPU: shards resident as tensors, batches indexed there, bf16 autocast.

No GPU exists where these tests run: the CUDA branches are checked through the pure choice
(:func:`choose_device` given a GPU count), and the command's refusal of ``--device cuda`` with
the GPU count held at 0 (as it is here), so they hold on a GPU machine too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from churnscale.cli import main
from churnscale.exceptions import ConfigError
from churnscale.neural import MlpModel, MlpParams, device, fit_mlp
from churnscale.neural.batches import epoch_order, rank_batches, resident
from churnscale.neural.device import (
    backend_for,
    choose_device,
    rank_device,
    resolve_device,
    visible_gpus,
)
from churnscale.neural.shards import Shard, shard_range


@pytest.mark.parametrize(
    ("requested", "gpus", "ranks", "kind"),
    [
        ("auto", 0, 1, "cpu"),
        ("auto", 1, 1, "cuda"),
        ("auto", 8, 8, "cuda"),
        ("auto", 1, 2, "cpu"),  # not a GPU for every rank: the CPU
        ("cpu", 8, 1, "cpu"),
        ("cuda", 1, 1, "cuda"),
        ("cuda", 4, 4, "cuda"),
    ],
)
def test_the_requested_device_is_resolved(requested: str, gpus: int, ranks: int, kind: str) -> None:
    assert choose_device(requested, gpus=gpus, local_ranks=ranks) == kind


def test_impossible_devices_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--device: expected a CUDA GPU visible to torch .*"):
        choose_device("cuda", gpus=0)
    with pytest.raises(ConfigError, match=r"--workers: expected at most one rank per GPU .*got 3"):
        choose_device("cuda", gpus=2, local_ranks=3)
    with pytest.raises(ConfigError, match="--device: expected auto, cpu or cuda, got 'tpu'"):
        choose_device("tpu", gpus=1)
    assert resolve_device("auto") == ("cuda" if visible_gpus() else "cpu")


def test_each_kind_has_its_backend_and_rank_device() -> None:
    assert (backend_for("cuda"), backend_for("cpu")) == ("nccl", "gloo")
    assert rank_device("cuda", 3) == torch.device("cuda", 3)
    assert rank_device("cpu", 3) == torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["--model", "mlp", "--device", "cuda"],
            f"--device: expected a CUDA GPU visible to torch {torch.__version__} "
            "(it sees none; use --device cpu or auto), got 'cuda'",
        ),
        (["--model", "mlp", "--precision", "fp16"], "--precision: expected fp32 or bf16"),
        (["--device", "cpu"], "--device: expected --model mlp, got '--model lightgbm'"),
    ],
)
def test_bad_device_flags_are_one_line_before_any_data_is_read(
    flags: list[str],
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # torch here is a CPU build, so it sees no GPU anyway; the patch keeps this so on GPU hosts
    monkeypatch.setattr(device, "visible_gpus", lambda: 0)
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["churnscale", "train", str(tmp_path / "absent.csv"), *flags])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {line}"), err


@given(
    total=st.integers(0, 300),
    world=st.integers(1, 4),
    size=st.integers(1, 64),
    seed=st.integers(0, 3),
)
def test_rank_batches_hold_each_global_batch_rows_in_the_shard(
    total: int, world: int, size: int, seed: int
) -> None:
    order = epoch_order(total, seed=seed, epoch=1, device=torch.device("cpu"))
    reference = np.random.default_rng([seed, 1]).permutation(total)
    for rank in range(world):
        start, stop = shard_range(total, rank, world)
        got = list(rank_batches(order, start=start, stop=stop, size=size))
        assert len(got) == -(-total // size)
        for k, (index, rows) in enumerate(got):
            batch = reference[k * size : (k + 1) * size]
            assert rows == len(batch)
            expected = batch[(batch >= start) & (batch < stop)] - start  # the per-batch form
            np.testing.assert_array_equal(index.numpy(), expected)


def test_a_resident_cpu_shard_shares_the_arrays() -> None:
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    shard = resident(Shard(features, np.ones(4, np.float32), 8, 12, 1), torch.device("cpu"))
    assert shard.x.device == torch.device("cpu") and shard.rows == 4
    assert shard.x.data_ptr() == features.ctypes.data  # moved once: no copy on the CPU


def test_the_device_path_on_cpu_with_bf16_gives_a_float32_bundle(
    mlp_dataset: Path, tmp_path: Path
) -> None:
    params = MlpParams(
        hidden=[16, 8],
        embedding_dim=4,
        batch_size=256,
        max_epochs=2,
        device="cpu",
        precision="bf16",
    )
    result = fit_mlp(mlp_dataset, params=params)
    assert result is not None
    assert result.timing["device"] == "cpu" and result.model.metadata["device"] == "cpu"
    assert len(result.timing["epoch_seconds"]) == len(result.history) == 2
    assert roc_auc_score(result.y_holdout, result.scores) > 0.75
    state = result.model.network.state_dict()
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    loaded = MlpModel.load(result.model.save(tmp_path / "bundle"))
    assert loaded.metadata["params"]["precision"] == "bf16"
    rows = np.nan_to_num(np.random.default_rng(0).normal(size=(64, result.model.config.width)))
    np.testing.assert_array_equal(loaded.predict_matrix(rows), result.model.predict_matrix(rows))


def test_the_train_command_passes_the_mlp_flags_to_training(
    mlp_dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    flags = ["--device", "cpu", "--precision", "bf16", "--batch-size", "2048"]
    out = tmp_path / "bundle"
    command = ["train", str(mlp_dataset), "--model", "mlp", *flags, "--no-register"]
    monkeypatch.setattr(sys, "argv", ["churnscale", *command, "--out", str(out), "--json"])
    main()
    printed = capsys.readouterr().out
    assert '"roc_auc"' in printed
    summary = json.loads(printed)
    assert (summary["device"], summary["precision"]) == ("cpu", "bf16")  # the run summary
    assert "cpu, bf16" in Path(summary["report"]).read_text()  # the report's details
    metadata = MlpModel.load(out).metadata
    assert metadata["device"] == "cpu"
    given = {k: metadata["params"][k] for k in ("device", "precision", "batch_size")}
    assert given == {"device": "cpu", "precision": "bf16", "batch_size": 2048}
