"""Fitting the S, T and X meta-learners of :class:`~churnscale.model.uplift.UpliftModel`.

Each learner is a few LightGBM boosters trained on rows encoded by the Preprocessor (tree
mode), the arm (0/1) and the outcome (0/1) of a randomized experiment. :func:`fit_learner` fits
one on any :class:`LearnerRows`: rows held in memory (:class:`MatrixRows`, what
:func:`fit_uplift` takes) or streamed from storage one row group at a time
(:class:`~churnscale.training.uplift_rows.StoredRows`, what ``churnscale train`` uses); the
same rows in the same order give the same boosters. The hyperparameters are one
:class:`UpliftParams` shared by every booster of a learner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


class LearnerRows(Protocol):
    """The rows a learner is fitted on: their arms and outcomes, LightGBM datasets of the
    rows of one arm (``arm`` None: every row) and a booster's answers for them."""

    def arm(self) -> np.ndarray:
        """Every row's arm (1 = treated), in order."""
        ...

    def outcome(self, arm: int | None) -> np.ndarray:
        """The outcome (0/1) of the rows of ``arm``."""
        ...

    def dataset(
        self, arm: int | None, label: np.ndarray, *, with_arm: bool, params: dict[str, Any]
    ) -> lgb.Dataset:
        """The rows of ``arm`` with ``label``; ``with_arm`` adds the arm as a last column."""
        ...

    def predict(self, booster: lgb.Booster, arm: int | None) -> np.ndarray:
        """``booster``'s answer for each row of ``arm``."""
        ...


@dataclass(frozen=True)
class MatrixRows:
    """Rows held in memory: an encoded matrix with each row's arm and outcome."""

    matrix: np.ndarray
    treated: np.ndarray
    y: np.ndarray
    categorical: list[int]

    def _rows(self, arm: int | None) -> slice | np.ndarray:
        return slice(None) if arm is None else np.asarray(self.treated).astype(bool) == bool(arm)

    def arm(self) -> np.ndarray:
        return np.asarray(self.treated).astype(np.int8)

    def outcome(self, arm: int | None) -> np.ndarray:
        return np.asarray(self.y[self._rows(arm)])

    def dataset(
        self, arm: int | None, label: np.ndarray, *, with_arm: bool, params: dict[str, Any]
    ) -> lgb.Dataset:
        rows = self.matrix[self._rows(arm)]
        if with_arm:
            rows = np.hstack([rows, self.arm()[self._rows(arm), None].astype(float)])
        cats: list[int] | Literal["auto"] = self.categorical or "auto"
        return lgb.Dataset(rows, label=label, categorical_feature=cats, free_raw_data=True)

    def predict(self, booster: lgb.Booster, arm: int | None) -> np.ndarray:
        return np.asarray(booster.predict(self.matrix[self._rows(arm)]))


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
    """The ``learner`` (s, t or x) fitted on encoded rows held in memory."""
    rows = MatrixRows(matrix, treated, y, preprocessor.categorical_indices)
    return fit_learner(preprocessor, rows, learner=learner, params=params, propensity=propensity)


def fit_learner(
    preprocessor: Preprocessor,
    rows: LearnerRows,
    *,
    learner: str,
    params: UpliftParams,
    propensity: str | float = PROPENSITY_SHARE,
) -> UpliftModel:
    """The ``learner`` (s, t or x) fitted on ``rows`` (in memory or streamed from storage)."""
    if learner not in LEARNER_BOOSTERS:
        raise ConfigError("--learner", expected="auto, s, t or x", received=learner)
    arm = rows.arm().astype(bool)

    def booster(
        side: int | None, label: np.ndarray, objective: str = "binary", *, with_arm: bool = False
    ) -> lgb.Booster:
        settings = params.lightgbm(objective)
        data = rows.dataset(side, label, with_arm=with_arm, params=settings)
        return lgb.train(settings, data, num_boost_round=params.rounds)

    share = propensity_of(propensity, arm)
    boosters: dict[str, lgb.Booster] = {}
    if learner == "s":
        boosters["single"] = booster(None, rows.outcome(None), with_arm=True)
    else:
        boosters["control"] = booster(0, rows.outcome(0))
        boosters["treated"] = booster(1, rows.outcome(1))
    if learner == "x":
        imputed_treated = rows.outcome(1) - rows.predict(boosters["control"], 1)
        imputed_control = rows.predict(boosters["treated"], 0) - rows.outcome(0)
        boosters["effect_treated"] = booster(1, imputed_treated, "regression")
        boosters["effect_control"] = booster(0, imputed_control, "regression")
        if share is None:
            boosters["propensity"] = booster(None, arm.astype(float))
    metadata = {"propensity_source": str(propensity), "params": vars(params)}
    return UpliftModel(
        preprocessor,
        learner=learner,
        boosters=boosters,
        propensity=share if learner == "x" else None,
        metadata=metadata,
    )
