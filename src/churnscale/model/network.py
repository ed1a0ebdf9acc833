"""The churn MLP: embeddings for categorical codes, scaled numerics, a few dense layers.

Its input is the Preprocessor's **tree-mode row** as float32 (``Preprocessor.transform``):
numeric, boolean and datetime values as they are (NaN when missing) and categorical codes into
the fitted vocabularies (``len(vocabulary)`` = other, NaN = missing). Imputation, scaling,
missing indicators and the embedding look-up happen inside the network, so the same float
matrix feeds LightGBM, this network and both exported ONNX graphs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from churnscale.data.schema import Role
from churnscale.features.preprocessor import Preprocessor


@dataclass(frozen=True)
class NetworkConfig:
    """The shape of a :class:`ChurnNet`: which columns feed what, and the layer sizes."""

    width: int
    numeric: list[int]
    categorical: list[int]
    cardinalities: list[int]
    embedding_dim: int = 8
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkConfig:
        """Inverse of :meth:`to_dict` (types checked by the caller's ``try``)."""
        return cls(
            width=int(data["width"]),
            numeric=[int(i) for i in data["numeric"]],
            categorical=[int(i) for i in data["categorical"]],
            cardinalities=[int(n) for n in data["cardinalities"]],
            embedding_dim=int(data["embedding_dim"]),
            hidden=[int(n) for n in data["hidden"]],
            dropout=float(data["dropout"]),
        )

    @property
    def input_width(self) -> int:
        """Width of the first dense layer's input."""
        return 2 * len(self.numeric) + len(self.categorical) * self.embedding_dim


def config_for(
    pre: Preprocessor, *, embedding_dim: int, hidden: list[int], dropout: float
) -> NetworkConfig:
    """The network shape for a fitted Preprocessor's tree-mode columns."""
    numeric = [i for i, s in enumerate(pre.features_) if s.role is not Role.CATEGORICAL]
    categorical = pre.categorical_indices
    cards = [len(pre.features_[i].vocabulary) for i in categorical]
    return NetworkConfig(
        width=len(pre.features_),
        numeric=numeric,
        categorical=categorical,
        cardinalities=cards,
        embedding_dim=embedding_dim,
        hidden=list(hidden),
        dropout=dropout,
    )


class ChurnNet(nn.Module):
    """Tree-mode float32 rows → churn logit (one per row)."""

    numeric_index: torch.Tensor
    categorical_index: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    offsets: torch.Tensor
    missing_code: torch.Tensor
    embedding: nn.Embedding | None

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        n_num, cards = len(config.numeric), config.cardinalities
        self.register_buffer("numeric_index", torch.tensor(config.numeric, dtype=torch.long))
        self.register_buffer(
            "categorical_index", torch.tensor(config.categorical, dtype=torch.long)
        )
        self.register_buffer("mean", torch.zeros(n_num))
        self.register_buffer("std", torch.ones(n_num))
        # each column's codes: 0..V-1 vocabulary, V other, V+1 missing; one shared table
        offsets = np.concatenate([[0], np.cumsum([v + 2 for v in cards])]).astype(np.int64)
        self.register_buffer("offsets", torch.from_numpy(offsets[:-1].copy()))
        self.register_buffer("missing_code", torch.tensor([float(v + 1) for v in cards]))
        self.embedding = nn.Embedding(int(offsets[-1]), config.embedding_dim) if cards else None
        layers: list[nn.Module] = []
        width = config.input_width
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def set_scaling(self, pre: Preprocessor) -> None:
        """Copy the Preprocessor's fitted means and standard deviations into the buffers."""
        specs = [pre.features_[i] for i in self.config.numeric]
        self.mean.copy_(torch.tensor([s.stats.mean for s in specs], dtype=torch.float32))
        self.std.copy_(torch.tensor([s.stats.std for s in specs], dtype=torch.float32))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The first dense layer's input: scaled numerics, missing flags, embeddings."""
        parts: list[torch.Tensor] = []
        if self.config.numeric:
            values = x.index_select(1, self.numeric_index)
            missing = torch.isnan(values)
            filled = torch.where(missing, self.mean, values)
            parts += [(filled - self.mean) / self.std, missing.to(x.dtype)]
        if self.embedding is not None:
            raw = x.index_select(1, self.categorical_index)
            codes = torch.where(torch.isnan(raw), self.missing_code, raw)
            codes = torch.minimum(torch.clamp(codes, min=0.0), self.missing_code)
            embedded = self.embedding(codes.long() + self.offsets)
            parts.append(embedded.reshape(x.shape[0], -1))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Churn logits, shape (rows,)."""
        out: torch.Tensor = self.mlp(self.features(x)).squeeze(1)
        return out


class ProbabilityNet(nn.Module):
    """A :class:`ChurnNet` ending in a sigmoid (what is exported to ONNX)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Churn probabilities, shape (rows,)."""
        return torch.sigmoid(self.net(x))
