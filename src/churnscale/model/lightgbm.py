"""LightGBMModel: a fitted Preprocessor, a LightGBM booster and metadata, saved as a safe bundle.

A bundle is a directory published atomically by :func:`churnscale.artifacts.publish_directory`:

- ``model.txt``: the LightGBM model in its own text format,
- ``preprocessor.json``: the fitted Preprocessor,
- ``metadata.json``: schema, data fingerprint, parameters, metrics, library versions, commit,
- ``reference.json`` (optional): the training data's drift reference profile
  (:class:`~churnscale.monitoring.reference.DriftReference`); bundles without it still load,
- ``manifest.json``: the SHA-256 of every file, verified before anything is parsed.

Nothing in a bundle is pickled, and loading never runs code from it.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.exceptions import IntegrityError, ModelNotFoundError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.reference import REFERENCE_FILE, DriftReference

# LightGBM's default logger print()s native messages to stdout, which would corrupt
# ``--json`` output; route them to Python logging instead (INFO, hidden by default).
lgb.register_logger(logging.getLogger("lightgbm"))

MODEL_FILE = "model.txt"
PREPROCESSOR_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class Reason:
    """One feature's contribution (log-odds) to a customer's churn score."""

    feature: str
    contribution: float


class LightGBMModel:
    """The unit that is trained, evaluated, registered, served and scored."""

    def __init__(
        self,
        preprocessor: Preprocessor,
        booster: lgb.Booster,
        metadata: Mapping[str, Any] | None = None,
        *,
        reference: DriftReference | None = None,
    ) -> None:
        self.preprocessor = preprocessor
        self.booster = booster
        self.metadata: dict[str, Any] = dict(metadata or {})
        #: The training data's drift reference profile (None for bundles saved without one).
        self.reference = reference
        self._one: Callable[[np.ndarray], float] = _single_row_predictor(booster)

    @property
    def feature_names(self) -> list[str]:
        """Model inputs, in tree-mode order."""
        return self.preprocessor.feature_names

    def predict_proba(self, batch: pa.RecordBatch | pa.Table, *, threads: int = 0) -> np.ndarray:
        """Churn probability of every row of ``batch``."""
        matrix = self.preprocessor.transform(batch)
        return self.predict_matrix(matrix, threads=threads)

    def predict_matrix(self, matrix: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Churn probability of rows already encoded in tree mode."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(matrix, num_threads=threads), dtype=np.float64)

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """Churn probability of one customer given as a dict (equal to the batch result)."""
        return self._one(self.preprocessor.encode_one(x))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (rows × features+1; last column is the bias)."""
        return np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)

    def explain(self, batch: pa.RecordBatch | pa.Table, *, top: int = 3) -> list[list[Reason]]:
        """The ``top`` features pushing each customer's score up or down the most."""
        contrib = self.contributions(self.preprocessor.transform(batch))[:, :-1]
        return [self._reasons(row, top) for row in contrib]

    def explain_one(self, x: Mapping[str, Any], *, top: int = 3) -> list[Reason]:
        """Reason codes for one customer given as a dict."""
        row = self.preprocessor.encode_one(x).reshape(1, -1)
        return self._reasons(self.contributions(row)[0, :-1], top)

    def _reasons(self, contributions: np.ndarray, top: int) -> list[Reason]:
        order = np.argsort(-np.abs(contributions))[:top]
        names = self.feature_names
        return [Reason(names[i], round(float(contributions[i]), 6)) for i in order]

    def importance(self) -> dict[str, float]:
        """Total gain of each feature across the trees."""
        gains = self.booster.feature_importance(importance_type="gain")
        return {n: float(g) for n, g in zip(self.feature_names, gains, strict=True)}

    # ---- bundle ---------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Publish the model as a bundle directory at ``path`` (atomic; never overwrites)."""
        metadata = {**self.metadata, "environment": environment()}

        def fill(staging: Path) -> None:
            # written by Python, so a full disk raises OSError (LightGBM's own writer raises
            # a LightGBMError that says nothing of the cause)
            (staging / MODEL_FILE).write_text(self.booster.model_to_string())
            self.preprocessor.save(staging / PREPROCESSOR_FILE)
            (staging / METADATA_FILE).write_text(
                json.dumps(metadata, indent=2, sort_keys=True, default=_json_default) + "\n"
            )
            if self.reference is not None:
                self.reference.save(staging / REFERENCE_FILE)

        publish_directory(path, fill)
        return path

    @classmethod
    def load(cls, path: Path) -> LightGBMModel:
        """Load a bundle after verifying every file against its manifest."""
        if not path.is_dir():
            raise ModelNotFoundError(str(path), "no bundle directory at this path")
        manifest = verify_directory(path)
        needed = {MODEL_FILE, PREPROCESSOR_FILE, METADATA_FILE}
        missing = sorted(needed - set(manifest["files"]))
        if missing:
            raise IntegrityError(str(path), f"not a model bundle: missing {missing}")
        try:
            booster = lgb.Booster(model_str=(path / MODEL_FILE).read_text())
            preprocessor = Preprocessor.load(path / PREPROCESSOR_FILE)
            metadata = json.loads((path / METADATA_FILE).read_text())
            reference = (
                DriftReference.load(path / REFERENCE_FILE)
                if REFERENCE_FILE in manifest["files"]
                else None
            )
        except (lgb.basic.LightGBMError, ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(str(path), f"unreadable bundle: {exc}") from exc
        if booster.num_feature() != len(preprocessor.feature_names):
            raise IntegrityError(str(path), "model and preprocessor disagree on the features")
        if reference is not None and [h.name for h in reference.features] != (
            preprocessor.feature_names
        ):
            raise IntegrityError(str(path), "drift reference and preprocessor disagree")
        metadata["manifest_sha256"] = manifest["manifest_sha256"]
        return cls(preprocessor, booster, metadata, reference=reference)


def _single_row_predictor(booster: lgb.Booster) -> Callable[[np.ndarray], float]:
    """One-row predict with a single thread (LightGBM's OpenMP start-up dominates otherwise)."""

    def predict(row: np.ndarray) -> float:
        value = booster.predict(row.reshape(1, -1), num_threads=1)
        return float(value[0])

    return predict


def environment() -> dict[str, str]:
    """Library versions and the git commit the model was made with."""
    import sklearn

    from churnscale.version import __version__

    return {
        "churnscale": __version__,
        "lightgbm": lgb.__version__,
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
