"""Where the MLP trains: the device a ``--device`` request means, each rank's device, the
collective backend for it, and the autocast precision.

``auto`` is CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is refused in one
line before any data is read. On CUDA every rank owns one GPU (its local rank's) and the ranks
talk over NCCL; on the CPU they talk over gloo.
"""

from __future__ import annotations

import torch

from churnscale.exceptions import ConfigError
from churnscale.neural.params import DEVICES, PRECISIONS


def choose_device(requested: str, *, gpus: int) -> str:
    """The device kind (``cpu`` or ``cuda``) that ``requested`` means with ``gpus`` GPUs."""
    if requested not in DEVICES:
        raise ConfigError("--device", expected="auto, cpu or cuda", received=requested)
    if requested == "auto":
        return "cuda" if gpus > 0 else "cpu"
    if requested == "cuda" and gpus == 0:
        raise ConfigError(
            "--device",
            expected=f"a CUDA GPU visible to torch {torch.__version__} (it sees none; "
            "use --device cpu or auto)",
            received=requested,
        )
    return requested


def visible_gpus() -> int:
    """CUDA devices this process can use (0 on a CPU-only build or machine)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(requested: str) -> str:
    """:func:`choose_device` on this machine."""
    return choose_device(requested, gpus=visible_gpus())


def check_precision(precision: str, kind: str) -> None:
    """Refuse an unknown precision, or bf16 on a GPU without bf16 arithmetic."""
    if precision not in PRECISIONS:
        raise ConfigError("--precision", expected="fp32 or bf16", received=precision)
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("--precision", expected="fp32 on a GPU without bf16", received="bf16")


def check_ranks(kind: str, *, local_ranks: int, gpus: int) -> None:
    """On CUDA each rank on a machine needs its own GPU (NCCL refuses two ranks on one)."""
    if kind == "cuda" and local_ranks > gpus:
        raise ConfigError(
            "--workers",
            expected=f"at most the {gpus} visible GPU(s) with --device cuda "
            "(or --device cpu for more CPU processes)",
            received=local_ranks,
        )


def rank_device(kind: str, local_rank: int) -> torch.device:
    """The device of the rank with this local rank: its own GPU on CUDA, else the CPU."""
    return torch.device("cuda", local_rank) if kind == "cuda" else torch.device("cpu")


def backend_for(kind: str) -> str:
    """The ``torch.distributed`` backend for ranks on ``kind``: NCCL on GPUs, gloo on CPUs."""
    return "nccl" if kind == "cuda" else "gloo"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Mixed precision for the forward pass: bf16 autocast, or disabled for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
