"""LightGBMModel: a fitted Preprocessor, a LightGBM booster and metadata, saved as a safe bundle.

Its bundle (:mod:`churnscale.model.bundle`) holds ``model.txt``, the LightGBM model in its own
text format, besides the files every bundle has.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import IntegrityError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.base import ModelBase
from churnscale.model.bundle import BundleParts, VerifiedBundle
from churnscale.model.contract import Reason, Table
from churnscale.model.reference import DriftReference

# LightGBM's default logger print()s native messages to stdout, which would corrupt
# ``--json`` output; route them to Python logging instead (INFO, hidden by default).
lgb.register_logger(logging.getLogger("lightgbm"))

MODEL_FILE = "model.txt"


class LightGBMModel(ModelBase):
    """Gradient-boosted trees (LightGBM): the main churn model, explainable per customer."""

    model_type: ClassVar[str] = "lightgbm"
    model_files: ClassVar[frozenset[str]] = frozenset({MODEL_FILE})
    read_errors: ClassVar[tuple[type[Exception], ...]] = (lgb.basic.LightGBMError,)
    #: Whether the trees' output is the churn probability, so compiled trees can serve it.
    compilable: ClassVar[bool] = True

    def __init__(
        self,
        preprocessor: Preprocessor,
        booster: lgb.Booster,
        metadata: Mapping[str, Any] | None = None,
        *,
        reference: DriftReference | None = None,
    ) -> None:
        super().__init__(preprocessor, metadata, reference=reference)
        self.booster = booster

    def predict_proba(self, X: Table, *, threads: int = 0) -> np.ndarray:
        """Churn probability of every row of ``X`` (``threads``: LightGBM's; 0 = all cores)."""
        return self.predict_matrix(self.preprocessor.transform(X), threads=threads)

    def predict_matrix(self, matrix: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Churn probability of rows already encoded in tree mode."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(matrix, num_threads=threads), dtype=np.float64)

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """Churn probability of one customer given as a dict (one thread: LightGBM's OpenMP
        start-up would dominate a single row)."""
        row = self.preprocessor.encode_one(x).reshape(1, -1)
        return float(self.booster.predict(row, num_threads=1)[0])

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (rows × features+1; last column is the bias)."""
        return np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)

    def explain(self, X: Table, *, top: int = 3) -> list[list[Reason]]:
        """The ``top`` features pushing each customer's score up or down the most."""
        contrib = self.contributions(self.preprocessor.transform(X))[:, :-1]
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
    def _write_model(self, staging: Path) -> None:
        (staging / MODEL_FILE).write_text(self.booster.model_to_string())

    @classmethod
    def _read_model(cls, bundle: VerifiedBundle, parts: BundleParts) -> LightGBMModel:
        booster = lgb.Booster(model_str=(bundle.path / MODEL_FILE).read_text())
        if booster.num_feature() != len(parts.preprocessor.feature_names):
            raise IntegrityError(
                str(bundle.path), "model and preprocessor disagree on the features"
            )
        return cls(parts.preprocessor, booster, parts.metadata, reference=parts.reference)
