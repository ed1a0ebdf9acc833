"""Which rank this process is when ``torchrun`` started it (its environment contract).

``torchrun --nnodes M --nproc-per-node N … churnscale train DATA --model mlp`` starts M×N
copies of the command; each reads ``RANK`` and ``WORLD_SIZE`` and joins the process group
through ``MASTER_ADDR``/``MASTER_PORT`` (``init_method="env://"``); ``LOCAL_RANK`` (its
place on its machine) picks its GPU on CUDA. Without those variables churnscale spawns its own
ranks on this machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from churnscale.exceptions import ConfigError

_CONTRACT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class TorchrunRank:
    """This process's place in a job that torchrun (or another env:// launcher) started."""

    rank: int
    world: int
    #: this process's place among the ranks on its machine (``LOCAL_RANK``; ``rank`` if unset)
    local: int = 0
    #: ranks on this machine (``LOCAL_WORLD_SIZE``; ``world`` if unset)
    local_world: int = 1

    @property
    def leads(self) -> bool:
        """Rank 0 scores the hold-out, reports and registers; the others only train."""
        return self.rank == 0


def torchrun_rank() -> TorchrunRank | None:
    """The rank and world size torchrun gave this process, or None when it did not start it."""
    if not all(os.environ.get(name) for name in _CONTRACT):
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK") or rank)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE") or world)
    except ValueError as exc:
        raise ConfigError(
            "RANK/WORLD_SIZE", expected="integers set by torchrun", received=str(exc)
        ) from exc
    if world < 1 or not 0 <= rank < world:
        raise ConfigError("RANK", expected=f"0 <= RANK < WORLD_SIZE ({world})", received=rank)
    if not 0 <= local < local_world:
        raise ConfigError(
            "LOCAL_RANK",
            expected=f"0 <= LOCAL_RANK < LOCAL_WORLD_SIZE ({local_world})",
            received=local,
        )
    return TorchrunRank(rank, world, local, local_world)
