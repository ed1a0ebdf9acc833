"""MlpModel: a fitted Preprocessor, a :class:`ChurnNet` and metadata, saved as a safe bundle.

A bundle is a directory published atomically by :func:`churnscale.artifacts.publish_directory`:

- ``weights.safetensors``: the network's tensors (safetensors: raw tensors, no code),
- ``network.json``: the network shape and its stored form (float32, fp16, int8, pruned),
- ``preprocessor.json``: the fitted Preprocessor,
- ``metadata.json``: ``model_type: mlp``, schema, fingerprint, parameters, split, history,
- ``manifest.json``: the SHA-256 of every file, verified before anything is read.

Nothing is pickled: loading verifies the manifest, reads tensors with ``safetensors`` and
builds the network from ``network.json``; ``torch.load`` is never called.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.exceptions import IntegrityError, ModelNotFoundError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.lightgbm import PREPROCESSOR_FILE, environment
from churnscale.model.network import NetworkConfig
from churnscale.model.weights import decode_network, encode_network

WEIGHTS_FILE = "weights.safetensors"
NETWORK_FILE = "network.json"
METADATA_FILE = "metadata.json"
MODEL_TYPE = "mlp"


class MlpModel:
    """The neural churn model: same ``predict_proba`` contract as ``LightGBMModel``."""

    def __init__(
        self,
        preprocessor: Preprocessor,
        network: nn.Module,
        config: NetworkConfig,
        metadata: Mapping[str, Any] | None = None,
        *,
        variant: str = "float32",
    ) -> None:
        self.preprocessor = preprocessor
        self.network = network.eval()
        self.config = config
        self.metadata: dict[str, Any] = {**(metadata or {}), "model_type": MODEL_TYPE}
        self.variant = variant

    @property
    def feature_names(self) -> list[str]:
        """Model inputs, in tree-mode order (the network's input columns)."""
        return self.preprocessor.feature_names

    def predict_proba(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Churn probability of every row of ``batch``."""
        return self.predict_matrix(self.preprocessor.transform(batch))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability of rows already encoded in tree mode."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        x = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
        with torch.inference_mode():
            out = torch.sigmoid(self.network(x))
        return out.numpy().astype(np.float64)

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """Churn probability of one customer given as a dict (equal to the batch result)."""
        row = self.preprocessor.encode_one(x).reshape(1, -1)
        return float(self.predict_matrix(row)[0])

    # ---- bundle ---------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Publish the model as a bundle directory at ``path`` (atomic; never overwrites)."""
        tensors = encode_network(self.network, self.variant)
        network = {"config": self.config.to_dict(), "variant": self.variant}
        metadata = {**self.metadata, "environment": environment(), "torch": torch.__version__}

        def fill(staging: Path) -> None:
            save_file(tensors, str(staging / WEIGHTS_FILE))
            (staging / NETWORK_FILE).write_text(json.dumps(network, indent=2) + "\n")
            self.preprocessor.save(staging / PREPROCESSOR_FILE)
            (staging / METADATA_FILE).write_text(
                json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n"
            )

        publish_directory(path, fill)
        return path

    @classmethod
    def load(cls, path: Path) -> MlpModel:
        """Load a bundle after verifying every file against its manifest (no unpickling)."""
        if not path.is_dir():
            raise ModelNotFoundError(str(path), "no bundle directory at this path")
        manifest = verify_directory(path)
        needed = {WEIGHTS_FILE, NETWORK_FILE, PREPROCESSOR_FILE, METADATA_FILE}
        missing = sorted(needed - set(manifest["files"]))
        if missing:
            raise IntegrityError(str(path), f"not an MLP bundle: missing {missing}")
        try:
            network = json.loads((path / NETWORK_FILE).read_text())
            config = NetworkConfig.from_dict(network["config"])
            variant = str(network["variant"])
            tensors = load_file(str(path / WEIGHTS_FILE))
            preprocessor = Preprocessor.load(path / PREPROCESSOR_FILE)
            metadata = json.loads((path / METADATA_FILE).read_text())
        except (SafetensorError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(str(path), f"unreadable bundle: {exc}") from exc
        if config.width != len(preprocessor.feature_names):
            raise IntegrityError(str(path), "network and preprocessor disagree on the features")
        net = decode_network(config, variant, tensors, where=str(path))
        metadata["manifest_sha256"] = manifest["manifest_sha256"]
        return cls(preprocessor, net, config, metadata, variant=variant)


def is_mlp_bundle(path: Path) -> bool:
    """Whether ``path`` looks like an MLP bundle (before verification)."""
    return (path / NETWORK_FILE).is_file() and (path / WEIGHTS_FILE).is_file()
