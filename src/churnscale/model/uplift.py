"""UpliftModel: the effect of an action on each customer, from meta-learners on LightGBM.

An uplift model answers ``uplift`` = P(outcome | treated) − P(outcome | control) for each
customer, with the two probabilities beside it (``p_treated``, ``p_control``). It is learned
from a randomized experiment by one of three meta-learners, each a few LightGBM boosters:

- **S** (``single``): one classifier of the outcome on the features plus the arm (a last column,
  1 = treated); uplift = its answer with the arm set to 1 minus with it set to 0;
- **T** (``control``, ``treated``): one outcome classifier per arm; uplift = the difference;
- **X** (T's two, plus ``effect_treated`` and ``effect_control``): regressors of each arm's
  imputed individual effect, mixed by the propensity e(x) (a constant, known or the treated
  share, or the ``propensity`` classifier): uplift = e·τ₀ + (1 − e)·τ₁.

For the contract, the model's probability (:meth:`predict_matrix`, :meth:`predict_proba`) is
P(outcome | control), the outcome if nothing is done, and ``p_treated`` is ``p_control + uplift``
(equal to the treated arm's classifier for S and T). The boosters are stored in ``uplift.json``
in LightGBM's text format; nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import IntegrityError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.base import ModelBase
from churnscale.model.bundle import BundleParts, VerifiedBundle
from churnscale.model.contract import Table
from churnscale.model.reference import DriftReference

UPLIFT_FILE = "uplift.json"
#: What an uplift model's predict returns, in order.
UPLIFT = "uplift"
P_TREATED = "p_treated"
P_CONTROL = "p_control"
#: The boosters each meta-learner is made of.
LEARNER_BOOSTERS: dict[str, tuple[str, ...]] = {
    "s": ("single",),
    "t": ("control", "treated"),
    "x": ("control", "treated", "effect_treated", "effect_control"),
}


class UpliftModel(ModelBase):
    """An S, T or X meta-learner on LightGBM boosters, in front of the shared Preprocessor."""

    model_type: ClassVar[str] = "uplift"
    model_files: ClassVar[frozenset[str]] = frozenset({UPLIFT_FILE})
    read_errors: ClassVar[tuple[type[Exception], ...]] = (lgb.basic.LightGBMError,)

    def __init__(
        self,
        preprocessor: Preprocessor,
        *,
        learner: str,
        boosters: Mapping[str, lgb.Booster],
        propensity: float | None,
        metadata: Mapping[str, Any] | None = None,
        reference: DriftReference | None = None,
    ) -> None:
        super().__init__(preprocessor, metadata, reference=reference)
        expected = set(LEARNER_BOOSTERS[learner])
        if learner == "x" and propensity is None:
            expected.add("propensity")
        if set(boosters) != expected:
            raise IntegrityError(
                "uplift model", f"learner {learner} needs boosters {sorted(expected)}"
            )
        self.learner = learner
        self.boosters = dict(boosters)
        self.propensity = propensity
        self.metadata.update(learner=learner, propensity=propensity)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The outcome probability without the action (the model's probability), the uplift
        and the outcome probability with it."""
        return (P_CONTROL, UPLIFT, P_TREATED)

    def _score(self, name: str, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.boosters[name].predict(matrix, num_threads=1), dtype=np.float64)

    def _with_arm(self, matrix: np.ndarray, arm: float) -> np.ndarray:
        return np.hstack([matrix, np.full((matrix.shape[0], 1), arm)])

    def outputs_of_matrix(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Uplift, P(outcome | treated) and P(outcome | control) of encoded rows."""
        if matrix.shape[0] == 0:
            empty = np.empty(0, dtype=np.float64)
            return {P_CONTROL: empty, UPLIFT: empty, P_TREATED: empty}
        if self.learner == "s":
            control = self._score("single", self._with_arm(matrix, 0.0))
            uplift = self._score("single", self._with_arm(matrix, 1.0)) - control
        else:
            control = self._score("control", matrix)
            uplift = self._score("treated", matrix) - control
        if self.learner == "x":
            share = (
                np.full(matrix.shape[0], self.propensity)
                if self.propensity is not None
                else np.clip(self._score("propensity", matrix), 0.01, 0.99)
            )
            tau_treated = self._score("effect_treated", matrix)
            tau_control = self._score("effect_control", matrix)
            uplift = share * tau_control + (1.0 - share) * tau_treated
        treated = np.clip(control + uplift, 0.0, 1.0)
        return {P_CONTROL: control, UPLIFT: treated - control, P_TREATED: treated}

    def uplift_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Uplift of encoded rows."""
        return self.outputs_of_matrix(matrix)[UPLIFT]

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """P(outcome | control) of encoded rows: the outcome if nothing is done."""
        return self.outputs_of_matrix(matrix)[P_CONTROL]

    def predict(self, X: Table) -> dict[str, np.ndarray]:
        """Uplift and both arms' outcome probabilities of every customer of ``X``."""
        return self.outputs_of_matrix(self.preprocessor.transform(X))

    def predict_one(self, x: Mapping[str, Any]) -> dict[str, float]:
        """Uplift and both arms' outcome probabilities of one customer given as a dict."""
        row = self.preprocessor.encode_one(x).reshape(1, -1)
        return {name: float(values[0]) for name, values in self.outputs_of_matrix(row).items()}

    # ---- bundle ---------------------------------------------------------------------------
    def _write_model(self, staging: Path) -> None:
        stored = {
            "learner": self.learner,
            "propensity": self.propensity,
            "boosters": {name: b.model_to_string() for name, b in self.boosters.items()},
        }
        (staging / UPLIFT_FILE).write_text(json.dumps(stored))

    @classmethod
    def _read_model(cls, bundle: VerifiedBundle, parts: BundleParts) -> UpliftModel:
        stored = json.loads((bundle.path / UPLIFT_FILE).read_text())
        learner = str(stored["learner"])
        if learner not in LEARNER_BOOSTERS:
            raise IntegrityError(str(bundle.path), f"unknown uplift learner {learner!r}")
        boosters = {n: lgb.Booster(model_str=s) for n, s in stored["boosters"].items()}
        features = len(parts.preprocessor.feature_names)
        for name, booster in boosters.items():
            if booster.num_feature() != features + (name == "single"):
                raise IntegrityError(
                    str(bundle.path), f"booster {name} and preprocessor disagree on the features"
                )
        propensity = stored["propensity"]
        return cls(
            parts.preprocessor,
            learner=learner,
            boosters=boosters,
            propensity=None if propensity is None else float(propensity),
            metadata=parts.metadata,
            reference=parts.reference,
        )
