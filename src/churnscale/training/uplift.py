"""Training an uplift model from a stored randomized experiment: arms, split, learner, hold-out.

:func:`train_uplift` reads the arm and outcome of every stored row (rows with any other
treatment value are left out and counted, never mixed in), splits the two arms' rows stratified
on arm × outcome (hold-out ``valid_fraction``, :mod:`~churnscale.training.uplift_split`), fits
the Preprocessor on the training side in one streamed pass (the treatment column is not a
feature), picks the meta-learner by cross-validated normalised Qini on the training side
(``learner="auto"``) or takes the one asked for, fits it on the training side and evaluates it
on the hold-out (:func:`~churnscale.evaluation.uplift.evaluate_uplift`). The rows are never
held in memory: each booster reads its rows one row group at a time
(:mod:`~churnscale.training.uplift_rows`), as the binary model's local training does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.evaluation.uplift import UpliftEvaluation, evaluate_uplift
from churnscale.evaluation.uplift_curves import qini_auc
from churnscale.exceptions import ConfigError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.decisions import QUANTILES_KEY, uplift_quantiles
from churnscale.model.uplift import LEARNER_BOOSTERS, UpliftModel
from churnscale.monitoring.reference import build_reference
from churnscale.training.local import fit_preprocessor
from churnscale.training.plan import TEST, TRAIN, VALID
from churnscale.training.uplift_fit import PROPENSITY_SHARE, UpliftParams, fit_learner
from churnscale.training.uplift_rows import (
    ArmRows,
    StoredRows,
    read_arm_rows,
    side_tables,
    uplift_of_side,
)
from churnscale.training.uplift_split import fold_of_rows, holdout_sides, strata_of

AUTO = "auto"


@dataclass(frozen=True)
class UpliftSpec:
    """Which column holds the arm, its two values, and how to learn and evaluate."""

    treatment_col: str
    treatment: str
    control: str
    learner: str = AUTO
    propensity: str | float = PROPENSITY_SHARE
    folds: int = 3
    valid_fraction: float = 0.2
    params: UpliftParams = field(default_factory=UpliftParams)

    def validate(self) -> None:
        """Refuse settings that cannot work, before any data is read."""
        if self.learner != AUTO and self.learner not in LEARNER_BOOSTERS:
            raise ConfigError("--learner", expected="auto, s, t or x", received=self.learner)
        if self.treatment == self.control:
            raise ConfigError(
                "--control", expected="a value other than --treatment", received=self.control
            )
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(
                "--valid-fraction", expected="a share in (0, 1)", received=self.valid_fraction
            )
        if not 2 <= self.folds <= 20:
            raise ConfigError("--cv", expected="2 to 20 folds", received=self.folds)


@dataclass
class UpliftResult:
    """A fitted uplift model and how it did."""

    model: UpliftModel
    holdout: UpliftEvaluation
    #: Normalised Qini of each learner tried, per cross-validation fold.
    cv: dict[str, list[float]]
    rows: dict[str, int]
    dropped: dict[str, int]


def feature_schema(schema: Schema, treatment_col: str) -> Schema:
    """The dataset's schema without the treatment column (the model never reads the arm)."""
    schema.role_of(treatment_col)  # a SchemaError naming the column when it is not there
    return replace(schema, columns=tuple(c for c in schema.columns if c.name != treatment_col))


def read_arms(dataset: Path, spec: UpliftSpec) -> tuple[Schema, ArmRows]:
    """The feature schema and every stored row's arm and outcome (other arms counted)."""
    schema, _ = load_info(dataset)
    features = feature_schema(schema, spec.treatment_col)
    rows = read_arm_rows(
        dataset, treatment_col=spec.treatment_col, treatment=spec.treatment, control=spec.control
    )
    return features, rows


def fit_side(
    preprocessor: Preprocessor, rows: ArmRows, side: int, *, learner: str, spec: UpliftSpec
) -> UpliftModel:
    """``learner`` fitted on the rows on ``side`` with ``spec``'s parameters and propensity."""
    return fit_learner(
        preprocessor,
        StoredRows(rows, side, preprocessor),
        learner=learner,
        params=spec.params,
        propensity=spec.propensity,
    )


def cross_validated_qini(
    preprocessor: Preprocessor, rows: ArmRows, *, learners: list[str], spec: UpliftSpec
) -> dict[str, list[float]]:
    """Normalised Qini of each learner on each fold of the TRAIN side (folds stratified on
    arm × outcome, as ``StratifiedKFold(shuffle=True, random_state=seed)`` makes them)."""
    treated, y = rows.values(TRAIN)
    fold = fold_of_rows(strata_of(treated, y), folds=spec.folds, seed=spec.params.seed)
    scores: dict[str, list[float]] = {name: [] for name in learners}
    for k in range(spec.folds):
        inner = rows.within(TRAIN, np.where(fold == k, VALID, TRAIN).astype(np.int8))
        scored_t, scored_y = inner.values(VALID)
        for name in learners:
            model = fit_side(preprocessor, inner, TRAIN, learner=name, spec=spec)
            uplift = uplift_of_side(model, inner, VALID)
            scores[name].append(qini_auc(scored_y, uplift, scored_t))
    return scores


def train_uplift(dataset: Path, spec: UpliftSpec) -> UpliftResult:
    """Fit and evaluate an uplift model on a stored randomized experiment."""
    spec.validate()
    schema, rows = read_arms(dataset, spec)
    treated, y = rows.values(None)
    rows.assign(
        holdout_sides(
            strata_of(treated, y), valid_fraction=spec.valid_fraction, seed=spec.params.seed
        )
    )
    counts = {"treated": int(treated.sum()), "control": int(treated.size - treated.sum())}
    del treated, y
    preprocessor = fit_preprocessor(rows.plan(TRAIN), schema)
    learners = sorted(LEARNER_BOOSTERS) if spec.learner == AUTO else [spec.learner]
    cv: dict[str, list[float]] = {}
    if spec.learner == AUTO:
        cv = cross_validated_qini(preprocessor, rows, learners=learners, spec=spec)
    chosen = max(learners, key=lambda name: float(np.mean(cv[name]))) if cv else learners[0]
    model = fit_side(preprocessor, rows, TRAIN, learner=chosen, spec=spec)
    test_t, test_y = rows.values(TEST)
    holdout = evaluate_uplift(test_y, uplift_of_side(model, rows, TEST), test_t)
    model.metadata[QUANTILES_KEY] = uplift_quantiles(uplift_of_side(model, rows, TRAIN))
    model.reference = build_reference(model, side_tables(rows, TRAIN, schema))
    split = {"train": int(rows.values(TRAIN)[0].size), "test": int(test_t.size)}
    model.metadata.update(
        treatment_col=spec.treatment_col,
        treatment=spec.treatment,
        control=spec.control,
        target=schema.target,
        schema=schema.to_dict(),
        data_fingerprint=load_info(dataset)[1].fingerprint,
        rows=split,
        metrics=holdout.headline(),
        cv_qini={name: list(values) for name, values in cv.items()} or None,
    )
    return UpliftResult(model, holdout, cv, {**split, **counts}, rows.dropped)
