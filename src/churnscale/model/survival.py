"""SurvivalModel: when a customer will churn, as LightGBM trees on an AFT likelihood.

The trees give ``mu(x)``, the location of the customer's log time to churn
(:mod:`churnscale.model.aft`); with the fitted distribution and scale that is a whole survival
curve. Its outputs, by name, for horizons ``H`` (in the duration's units):

- ``churn_probability``: P(churn within the last horizon) — what every consumer of the model
  contract (monitoring, profit, ranking) reads as the customer's churn score;
- ``survival_H``: S(H | x), the probability of still being a customer at ``H``;
- ``churn_within_H``: 1 − S(H | x);
- ``restricted_mean_H``: the expected lifetime up to the last horizon (restricted mean).

Reasons are the trees' contributions to ``mu`` with the sign turned, so a positive one pushes
churn sooner, as a binary model's pushes churn more likely. The bundle holds ``model.txt`` (the
trees) and ``survival.json`` (distribution, scale, intercept, horizons, duration and event
columns) besides the files every bundle has.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import IntegrityError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.aft import Aft
from churnscale.model.bundle import BundleParts, VerifiedBundle
from churnscale.model.contract import CHURN_PROBABILITY, Table
from churnscale.model.lightgbm import MODEL_FILE, LightGBMModel
from churnscale.model.reference import DriftReference

SURVIVAL_FILE = "survival.json"


def horizon_label(horizon: float) -> str:
    """A horizon as it appears in output names: ``3`` for 3.0, ``2.5`` for 2.5."""
    return f"{horizon:g}"


class SurvivalModel(LightGBMModel):
    """Time to churn: a survival curve per customer, from trees and an AFT distribution."""

    model_type: ClassVar[str] = "survival"
    model_files: ClassVar[frozenset[str]] = frozenset({MODEL_FILE, SURVIVAL_FILE})
    compilable: ClassVar[bool] = False  # the trees give mu, not the probability

    def __init__(
        self,
        preprocessor: Preprocessor,
        booster: lgb.Booster,
        metadata: Mapping[str, Any] | None = None,
        *,
        aft: Aft,
        intercept: float,
        horizons: Sequence[float],
        reference: DriftReference | None = None,
    ) -> None:
        super().__init__(preprocessor, booster, metadata, reference=reference)
        self.aft = aft
        self.intercept = float(intercept)
        self.horizons = tuple(sorted(float(h) for h in horizons))

    @property
    def outputs(self) -> tuple[str, ...]:
        """``churn_probability``, then survival and churn within each horizon, then the
        restricted mean lifetime up to the last horizon."""
        labels = [horizon_label(h) for h in self.horizons]
        return (
            CHURN_PROBABILITY,
            *(f"survival_{h}" for h in labels),
            *(f"churn_within_{h}" for h in labels),
            f"restricted_mean_{labels[-1]}",
        )

    def location(self, matrix: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """``mu(x)``, the location of each customer's log time to churn."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        raw = self.booster.predict(matrix, raw_score=True, num_threads=threads)
        return np.asarray(raw, dtype=np.float64) + self.intercept

    def survival_matrix(self, matrix: np.ndarray, times: Sequence[float]) -> np.ndarray:
        """S(t | x) for encoded rows (rows) at ``times`` (columns)."""
        return self.aft.survival(self.location(matrix), np.asarray(times, np.float64))

    def predict_matrix(self, matrix: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """P(churn within the last horizon) of rows already encoded in tree mode."""
        mu = self.location(matrix, threads=threads)
        return 1.0 - self.aft.survival(mu, np.array([self.horizons[-1]]))[:, 0]

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """P(churn within the last horizon) of one customer given as a dict."""
        row = self.preprocessor.encode_one(x).reshape(1, -1)
        return float(self.predict_matrix(row, threads=1)[0])

    def outputs_of_matrix(self, matrix: np.ndarray, *, threads: int = 0) -> dict[str, np.ndarray]:
        """Every output (:attr:`outputs`) of rows already encoded in tree mode."""
        mu = self.location(matrix, threads=threads)
        curve = self.aft.survival(mu, np.asarray(self.horizons))
        labels = [horizon_label(h) for h in self.horizons]
        out = {CHURN_PROBABILITY: 1.0 - curve[:, -1]}
        out.update({f"survival_{h}": curve[:, i] for i, h in enumerate(labels)})
        out.update({f"churn_within_{h}": 1.0 - curve[:, i] for i, h in enumerate(labels)})
        out[f"restricted_mean_{labels[-1]}"] = self.aft.restricted_mean(mu, self.horizons[-1])
        return out

    def predict(self, X: Table) -> dict[str, np.ndarray]:
        """Every output of every customer of ``X``, by name."""
        return self.outputs_of_matrix(self.preprocessor.transform(X))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature contributions to churning sooner (−mu); the last column is the bias."""
        contrib = -np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)
        contrib[:, -1] -= self.intercept
        return contrib

    # ---- bundle ---------------------------------------------------------------------------
    def _curve(self) -> dict[str, Any]:
        return {
            "distribution": self.aft.distribution,
            "sigma": self.aft.sigma,
            "intercept": self.intercept,
            "horizons": list(self.horizons),
        }

    def _write_model(self, staging: Path) -> None:
        super()._write_model(staging)
        (staging / SURVIVAL_FILE).write_text(json.dumps(self._curve(), indent=2) + "\n")

    @classmethod
    def _read_model(cls, bundle: VerifiedBundle, parts: BundleParts) -> SurvivalModel:
        trees = LightGBMModel._read_model(bundle, parts)
        curve = json.loads((bundle.path / SURVIVAL_FILE).read_text())
        horizons = [float(h) for h in curve["horizons"]]
        if not horizons:
            raise IntegrityError(str(bundle.path), "a survival model needs at least one horizon")
        return cls(
            parts.preprocessor,
            trees.booster,
            parts.metadata,
            aft=Aft(str(curve["distribution"]), float(curve["sigma"])),
            intercept=float(curve["intercept"]),
            horizons=horizons,
            reference=parts.reference,
        )
