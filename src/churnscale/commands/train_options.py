"""``churnscale train``'s flags checked before any data is read: the extras they need, the
LightGBM parameters of ``--params`` and the flags, the MLP flags, and the flags a survival
model refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnscale.exceptions import ConfigError


def require_extras(*, model: str, cluster: str | None, time_budget: float | None) -> None:
    """One line naming the extra to install when a flag needs a missing optional dependency."""
    from churnscale.extras import require

    if model == "mlp":
        require("neural", feature="train --model mlp")
    if cluster is not None:
        require("dask", feature="train --cluster")
    if time_budget is not None:
        require("tune", feature="train --time-budget")


def given_params(
    params_file: Path | None, overrides: dict[str, Any], seed: int, threads: int
) -> Any:
    """The LightGBM parameters of ``--params`` and the flags (the flags win), as
    :func:`churnscale.api.training.train_params` takes them."""
    given: dict[str, Any] = {}
    if params_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(params_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                "--params", expected="a readable YAML/JSON file", received=str(exc)
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError("--params", expected="a mapping of parameters", received=loaded)
        given.update(loaded)
    given.update({k: v for k, v in overrides.items() if v is not None})
    given.update(seed=seed, threads=threads)
    return given


def mlp_flags(model: str, *, workers: int = 1, **flags: Any) -> dict[str, Any]:
    """The ``MlpParams`` fields the MLP flags set, checked before any data is read (a
    ``--device cuda`` without a GPU, or with fewer GPUs than ``--workers``, fails here, in one
    line; under torchrun the launcher's ranks on this machine count, as training counts them)."""
    given = {k: v for k, v in flags.items() if v is not None}
    if model != "mlp" and given:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise ConfigError(flag, expected="--model mlp", received=f"--model {model}")
    if not given:
        return given
    from churnscale.neural.device import check_precision, resolve_device
    from churnscale.neural.launch import torchrun_rank

    launched = torchrun_rank()
    local_ranks = max(workers, 1) if launched is None else launched.local_world
    kind = resolve_device(given.get("device", "auto"), local_ranks=local_ranks)
    check_precision(given.get("precision", "fp32"), kind)
    if given.get("batch_size", 1) < 1:
        raise ConfigError("--batch-size", expected="at least 1", received=given["batch_size"])
    return given


def binary_only(**flags: Any) -> None:
    """Refuse, with ``--duration-col``, the flags only a binary model takes (``flags``: the
    flag names as keywords, ``model``'s default ``lightgbm`` counting as unset)."""
    given: dict[str, Any] = {"--cv": flags["cv"], "--cluster": flags["cluster"]}
    given.update({"--init-model": flags["init_model"], "--time-budget": flags["time_budget"]})
    given["--model"] = None if flags["model"] == "lightgbm" else flags["model"]
    for flag, value in given.items():
        if value is not None:
            raise ConfigError(flag, expected="not with --duration-col", received=value)
