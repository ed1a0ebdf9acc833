"""Hyperparameters of the MLP (stored as given; checked by :meth:`MlpParams.validate`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from churnscale.exceptions import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class MlpParams:
    """Network shape and optimisation settings; ``batch_size`` is the global batch."""

    hidden: list[int] = field(default_factory=lambda: [64, 32])
    embedding_dim: int = 8
    dropout: float = 0.0
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    batch_size: int = 1_024
    max_epochs: int = 30
    patience: int = 3
    seed: int = 0
    #: intra-op threads per rank; 1 is fastest for a network this small (measured on 2 CPUs)
    threads: int = 1
    #: auto (CUDA when torch sees a GPU), cpu or cuda; see :mod:`churnscale.neural.device`
    device: str = "auto"
    #: fp32, or bf16 autocast of the forward pass (weights and optimizer stay float32)
    precision: str = "fp32"

    def validate(self) -> None:
        """Refuse values that would crash training or silently do nothing."""
        checks: list[tuple[str, bool, str]] = [
            ("hidden", bool(self.hidden) and min(self.hidden) >= 1, "one or more sizes >= 1"),
            ("embedding_dim", self.embedding_dim >= 1, "at least 1"),
            ("dropout", 0.0 <= self.dropout < 1.0, "a number in [0, 1)"),
            ("learning_rate", 0.0 < self.learning_rate <= 1.0, "a number in (0, 1]"),
            ("weight_decay", self.weight_decay >= 0.0, "at least 0"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("max_epochs", self.max_epochs >= 1, "at least 1"),
            ("patience", self.patience >= 1, "at least 1"),
            ("threads", self.threads >= 1, "at least 1"),
            ("device", self.device in DEVICES, "auto, cpu or cuda"),
            ("precision", self.precision in PRECISIONS, "fp32 or bf16"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(name, expected=expected, received=getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return asdict(self)
