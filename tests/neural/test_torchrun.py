"""Ranks started by torchrun (its env:// contract) instead of churnscale's own spawn: the
same weights as the spawned two-process run, rank 0 alone returns, reports and registers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from churnscale.config import Settings
from churnscale.exceptions import ConfigError
from churnscale.neural import MlpTrainResult, fit_mlp
from churnscale.neural.launch import torchrun_rank
from churnscale.registry import Registry

pytestmark = pytest.mark.slow
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
#: Same algorithm, same world size, same seed: the spawned and torchrun runs match to float32
#: summation order in gloo's all-reduce.
WEIGHT_TOLERANCE = 1e-5


def _torchrun(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*TORCHRUN, "2", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_torchrun_ranks_train_like_spawned_ranks(
    mlp_dataset: Path, two_processes: MlpTrainResult, tmp_path: Path
) -> None:
    script = Path(__file__).with_name("torchrun_job.py")
    _torchrun([str(script), str(mlp_dataset), str(tmp_path)], cwd=tmp_path)
    assert (tmp_path / "follower-1.done").exists()  # rank 1 got None back
    state = load_file(str(tmp_path / "weights.safetensors"))
    spawned = two_processes.model.network.state_dict()
    assert state.keys() == spawned.keys()
    for name, value in spawned.items():
        if value.is_floating_point():
            assert float((state[name] - value).abs().max()) <= WEIGHT_TOLERANCE, name
    shards = json.loads((tmp_path / "shards.json").read_text())
    assert shards == two_processes.shards  # the same disjoint halves, gathered on rank 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [h["epoch"] for h in two_processes.history]


def test_train_cli_under_torchrun_registers_once(mlp_dataset: Path, tmp_path: Path) -> None:
    env = {**_clean_env(), "CHURNSCALE_HOME": str(tmp_path / "home")}
    out = _torchrun(
        ["-m", "churnscale", "train", str(mlp_dataset), "--model", "mlp", "--json"],
        cwd=tmp_path,
        env=env,
    )
    summary = json.loads(out[out.index("{") : out.rindex("}") + 1])  # rank 0's summary only
    assert summary["model"] == "churn/1"
    assert out.count("this rank trained its shard") == 1  # rank 1's line
    registry = Registry(Settings(home=tmp_path / "home", tracking_uri=None))
    versions = [v.version for v in registry.list_models() if v.name == "churn"]
    assert versions == [1]  # one registered version, not one per rank
    metadata = json.loads((registry.resolve("churn/1") / "metadata.json").read_text())
    assert metadata["model_type"] == "mlp" and metadata["workers"] == 2


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CHURNSCALE_")}


def test_without_torchrun_there_is_no_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_rank() is None


def test_a_worker_count_that_disagrees_with_torchrun_is_refused(
    mlp_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="torchrun's WORLD_SIZE"):
        fit_mlp(mlp_dataset, workers=3)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK: expected 0 <= RANK < WORLD_SIZE"):
        torchrun_rank()
