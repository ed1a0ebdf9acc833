"""Where the MLP trains: the device a ``--device`` request means, each rank's device, the
collective backend for it, and the autocast precision.

On CUDA every rank owns one GPU (its local rank's: NCCL refuses two ranks on one GPU) and the
ranks talk over NCCL; on the CPU they talk over gloo. ``auto`` is CUDA when torch sees a GPU for
each rank on this machine, else the CPU; ``cuda`` without a GPU, or with fewer GPUs than local
ranks, is refused in one line before any data is read.
"""

from __future__ import annotations

import torch

from churnscale.exceptions import ConfigError
from churnscale.neural.params import DEVICES, PRECISIONS


def choose_device(requested: str, *, gpus: int, local_ranks: int = 1) -> str:
    """The device kind (``cpu`` or ``cuda``) that ``requested`` means for ``local_ranks``
    ranks on a machine with ``gpus`` GPUs."""
    if requested not in DEVICES:
        raise ConfigError("--device", expected="auto, cpu or cuda", received=requested)
    if requested == "auto":
        return "cuda" if gpus >= max(local_ranks, 1) else "cpu"
    if requested == "cuda" and gpus == 0:
        raise ConfigError(
            "--device",
            expected=f"a CUDA GPU visible to torch {torch.__version__} (it sees none; "
            "use --device cpu or auto)",
            received=requested,
        )
    if requested == "cuda" and local_ranks > gpus:
        raise ConfigError(
            "--workers",
            expected=f"at most one rank per GPU with --device cuda ({gpus} visible)",
            received=local_ranks,
        )
    return requested


def visible_gpus() -> int:
    """CUDA devices this process can use (0 on a CPU-only build or machine)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(requested: str, *, local_ranks: int = 1) -> str:
    """:func:`choose_device` on this machine."""
    return choose_device(requested, gpus=visible_gpus(), local_ranks=local_ranks)


def check_precision(precision: str, kind: str) -> None:
    """Refuse an unknown precision, or bf16 on a GPU without bf16 arithmetic."""
    if precision not in PRECISIONS:
        raise ConfigError("--precision", expected="fp32 or bf16", received=precision)
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("--precision", expected="fp32 on a GPU without bf16", received="bf16")


def rank_device(kind: str, local_rank: int) -> torch.device:
    """The device of the rank with this local rank: its own GPU on CUDA, else the CPU."""
    return torch.device("cuda", local_rank) if kind == "cuda" else torch.device("cpu")


def backend_for(kind: str) -> str:
    """The ``torch.distributed`` backend for ranks on ``kind``: NCCL on GPUs, gloo on CPUs."""
    return "nccl" if kind == "cuda" else "gloo"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Mixed precision for the forward pass: bf16 autocast, or disabled for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
