"""Fitting the S, T and X meta-learners of :class:`~churnscale.model.uplift.UpliftModel`.

Each learner is a few LightGBM boosters trained on rows already encoded by the Preprocessor
(tree mode), the arm ``treated`` (0/1) and the outcome ``y`` (0/1) of a randomized experiment.
:func:`fit_uplift` returns the fitted model; the hyperparameters are one :class:`UpliftParams`
shared by every booster of a learner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import ConfigError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.uplift import LEARNER_BOOSTERS, UpliftModel

#: ``--propensity``: the treated share of the training rows, or a classifier of the arm.
PROPENSITY_SHARE = "share"
PROPENSITY_MODEL = "model"


@dataclass(frozen=True)
class UpliftParams:
    """LightGBM settings of every booster of an uplift learner (fixed rounds: an uplift
    learner has no validation loss of its own to stop on)."""

    rounds: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    seed: int = 0
    #: LightGBM threads (0 = all cores; on a loaded machine 1 is far faster than 2).
    threads: int = 1

    def lightgbm(self, objective: str) -> dict[str, Any]:
        """LightGBM's parameters for a booster with ``objective``."""
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "num_threads": self.threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }


def _booster(
    matrix: np.ndarray,
    target: np.ndarray,
    *,
    objective: str,
    params: UpliftParams,
    categorical: list[int],
) -> lgb.Booster:
    data = lgb.Dataset(
        matrix, label=target, categorical_feature=categorical or "auto", free_raw_data=True
    )
    return lgb.train(params.lightgbm(objective), data, num_boost_round=params.rounds)


def propensity_of(propensity: str | float, treated: np.ndarray) -> float | None:
    """The constant propensity ``--propensity`` gives (None: a classifier estimates it)."""
    if propensity == PROPENSITY_MODEL:
        return None
    if propensity == PROPENSITY_SHARE:
        return float(np.mean(treated))
    value = float(propensity)
    if not 0.0 < value < 1.0:
        raise ConfigError(
            "--propensity", expected="share, model or a number in (0, 1)", received=propensity
        )
    return value


def fit_uplift(
    preprocessor: Preprocessor,
    matrix: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    *,
    learner: str,
    params: UpliftParams,
    propensity: str | float = PROPENSITY_SHARE,
) -> UpliftModel:
    """The ``learner`` (s, t or x) fitted on encoded rows with their arm and outcome."""
    if learner not in LEARNER_BOOSTERS:
        raise ConfigError("--learner", expected="auto, s, t or x", received=learner)
    arm = np.asarray(treated).astype(bool)
    cats = preprocessor.categorical_indices

    def classifier(rows: np.ndarray, target: np.ndarray) -> lgb.Booster:
        return _booster(rows, target, objective="binary", params=params, categorical=cats)

    share = propensity_of(propensity, arm)
    boosters: dict[str, lgb.Booster] = {}
    if learner == "s":
        boosters["single"] = classifier(np.hstack([matrix, arm[:, None].astype(float)]), y)
    else:
        boosters["control"] = classifier(matrix[~arm], y[~arm])
        boosters["treated"] = classifier(matrix[arm], y[arm])
    if learner == "x":

        def regressor(rows: np.ndarray, target: np.ndarray) -> lgb.Booster:
            return _booster(rows, target, objective="regression", params=params, categorical=cats)

        imputed_treated = y[arm] - boosters["control"].predict(matrix[arm])
        imputed_control = boosters["treated"].predict(matrix[~arm]) - y[~arm]
        boosters["effect_treated"] = regressor(matrix[arm], imputed_treated)
        boosters["effect_control"] = regressor(matrix[~arm], imputed_control)
        if share is None:
            boosters["propensity"] = classifier(matrix, arm.astype(float))
    metadata = {"propensity_source": str(propensity), "params": vars(params)}
    return UpliftModel(
        preprocessor,
        learner=learner,
        boosters=boosters,
        propensity=share if learner == "x" else None,
        metadata=metadata,
    )
