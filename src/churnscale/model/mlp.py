"""MlpModel: a fitted Preprocessor, a :class:`ChurnNet` and metadata, saved as a safe bundle.

Its bundle (:mod:`churnscale.model.bundle`) holds, besides the files every bundle has,

- ``weights.safetensors``: the network's tensors (safetensors: raw tensors, no code),
- ``network.json``: the network shape and its stored form (float32, fp16, int8, pruned).

Nothing is pickled: loading verifies the manifest, reads tensors with ``safetensors`` and
builds the network from ``network.json``; ``torch.load`` is never called. Importing this module
imports torch: :mod:`churnscale.model.loading` does so only for an MLP bundle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from churnscale.exceptions import IntegrityError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.base import ModelBase
from churnscale.model.bundle import BundleParts, VerifiedBundle
from churnscale.model.network import NetworkConfig
from churnscale.model.reference import DriftReference
from churnscale.model.weights import decode_network, encode_network

WEIGHTS_FILE = "weights.safetensors"
NETWORK_FILE = "network.json"
MODEL_TYPE = "mlp"


class MlpModel(ModelBase):
    """The neural churn model: a PyTorch MLP on the tree-mode row (no reasons)."""

    model_type: ClassVar[str] = MODEL_TYPE
    model_files: ClassVar[frozenset[str]] = frozenset({WEIGHTS_FILE, NETWORK_FILE})
    read_errors: ClassVar[tuple[type[Exception], ...]] = (SafetensorError,)

    def __init__(
        self,
        preprocessor: Preprocessor,
        network: nn.Module,
        config: NetworkConfig,
        metadata: Mapping[str, Any] | None = None,
        *,
        variant: str = "float32",
        reference: DriftReference | None = None,
    ) -> None:
        super().__init__(preprocessor, metadata, reference=reference)
        self.network = network.eval()
        self.config = config
        self.variant = variant

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability of rows already encoded in tree mode."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        x = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
        with torch.inference_mode():
            out = torch.sigmoid(self.network(x))
        return out.numpy().astype(np.float64)

    # ---- bundle ---------------------------------------------------------------------------
    def _saved_extra(self) -> dict[str, Any]:
        return {"torch": torch.__version__}

    def _write_model(self, staging: Path) -> None:
        network = {"config": self.config.to_dict(), "variant": self.variant}
        save_file(encode_network(self.network, self.variant), str(staging / WEIGHTS_FILE))
        (staging / NETWORK_FILE).write_text(json.dumps(network, indent=2) + "\n")

    @classmethod
    def _read_model(cls, bundle: VerifiedBundle, parts: BundleParts) -> MlpModel:
        path = bundle.path
        network = json.loads((path / NETWORK_FILE).read_text())
        config = NetworkConfig.from_dict(network["config"])
        variant = str(network["variant"])
        tensors = load_file(str(path / WEIGHTS_FILE))
        if config.width != len(parts.preprocessor.feature_names):
            raise IntegrityError(str(path), "network and preprocessor disagree on the features")
        net = decode_network(config, variant, tensors, where=str(path))
        return cls(
            parts.preprocessor,
            net,
            config,
            parts.metadata,
            variant=variant,
            reference=parts.reference,
        )
