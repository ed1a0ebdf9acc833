"""The device a run asks for is the one it trains on, and an impossible request is refused by
the library and the command before any data is read.

No GPU exists where these tests run; the refusals hold the GPU count where they need it (0, or
fewer GPUs than ranks), so they hold on a GPU machine too, and ``auto`` is checked against what
it resolves to on the machine that runs the test (the CPU here, a GPU on a GPU host).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from churnscale.cli import main
from churnscale.exceptions import ConfigError
from churnscale.model.mlp import MlpModel
from churnscale.neural import MlpParams, MlpTrainResult, device, fit_mlp
from churnscale.neural.device import backend_for, resolve_device

SMALL = MlpParams(hidden=[8], embedding_dim=2, max_epochs=1)


def test_auto_trains_where_it_resolves_and_records_it(one_process: MlpTrainResult) -> None:
    kind = resolve_device("auto")  # the fixture leaves the device at auto
    assert one_process.model.metadata["device"] == kind
    assert one_process.timing["device"].split(":")[0] == kind  # where rank 0's tensors were
    assert one_process.model.metadata["params"]["device"] == "auto"  # what was asked, kept


def test_ranks_train_where_auto_resolves_over_its_backend(
    one_process: MlpTrainResult, two_processes: MlpTrainResult
) -> None:
    kind = resolve_device("auto", local_ranks=2)
    assert two_processes.model.metadata["device"] == kind
    assert two_processes.timing["device"].split(":")[0] == kind
    assert two_processes.timing["backend"] == backend_for(kind)  # gloo here, NCCL on GPUs
    assert one_process.timing["backend"] is None  # one process: no process group


def test_the_saved_model_loads_on_the_cpu_as_float32(
    one_process: MlpTrainResult, tmp_path: Path
) -> None:
    loaded = MlpModel.load(one_process.model.save(tmp_path / "bundle"))
    tensors = list(loaded.network.state_dict().values())
    assert {t.device for t in tensors} == {torch.device("cpu")}
    assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.float32}


def test_cuda_without_a_gpu_is_refused_before_any_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "visible_gpus", lambda: 0)
    absent = tmp_path / "no-such-dataset"  # reading it would fail otherwise
    with pytest.raises(ConfigError, match=r"^--device: expected a CUDA GPU visible to torch"):
        fit_mlp(absent, params=replace(SMALL, device="cuda"))


def test_more_ranks_than_gpus_is_refused_before_any_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "visible_gpus", lambda: 1)
    with pytest.raises(ConfigError, match=r"at most one rank per GPU .*\(1 visible\), got 2"):
        fit_mlp(tmp_path / "no-such-dataset", params=replace(SMALL, device="cuda"), workers=2)


def test_the_command_refuses_more_workers_than_gpus_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(device, "visible_gpus", lambda: 2)
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path))
    flags = ["--model", "mlp", "--device", "cuda", "--workers", "3"]
    monkeypatch.setattr(sys, "argv", ["churnscale", "train", str(tmp_path / "absent.csv"), *flags])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
    expected = "error: --workers: expected at most one rank per GPU with --device cuda (2 visible)"
    assert err.startswith(expected), err
