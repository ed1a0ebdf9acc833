"""Training an uplift model from a stored randomized experiment: arms, split, learner, hold-out.

:func:`train_uplift` reads the rows of the two arms (rows with any other treatment value are
left out and counted, never mixed in), splits them stratified on arm × outcome (hold-out
``valid_fraction``), fits the Preprocessor on the training side (the treatment column is not a
feature), picks the meta-learner by cross-validated normalised Qini on the training side
(``learner="auto"``) or takes the one asked for, fits it on the training side and evaluates it
on the hold-out (:func:`~churnscale.evaluation.uplift.evaluate_uplift`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from churnscale.data.schema import Schema
from churnscale.data.store import iter_dataset, load_info
from churnscale.evaluation.uplift import UpliftEvaluation, evaluate_uplift
from churnscale.evaluation.uplift_curves import qini_auc
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.decisions import QUANTILES_KEY, uplift_quantiles
from churnscale.model.uplift import LEARNER_BOOSTERS, UpliftModel
from churnscale.monitoring.reference import build_reference
from churnscale.training.uplift_fit import PROPENSITY_SHARE, UpliftParams, fit_uplift

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


@dataclass(frozen=True)
class Arms:
    """The experiment's rows of the two arms: features, arm (1 = treated) and outcome."""

    table: pa.Table
    treated: np.ndarray
    y: np.ndarray
    #: Rows left out, by their other treatment value.
    dropped: dict[str, int]


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


def read_arms(dataset: Path, spec: UpliftSpec) -> tuple[Schema, Arms]:
    """The rows of the treatment and control arms of a stored dataset, with the others counted."""
    schema, _ = load_info(dataset)
    if schema.target is None:
        raise ConfigError("--target", expected="the outcome column", received=None)
    features = feature_schema(schema, spec.treatment_col)
    table = pa.Table.from_batches(list(iter_dataset(dataset)))
    arm = pc.cast(table.column(spec.treatment_col), pa.string()).to_numpy(zero_copy_only=False)
    values, counts = np.unique(arm.astype(str), return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist(), strict=True))
    for flag, value in (("--treatment", spec.treatment), ("--control", spec.control)):
        if value not in found:
            raise ConfigError(
                flag, expected=f"a value of {spec.treatment_col}: {sorted(found)}", received=value
            )
    kept = (arm == spec.treatment) | (arm == spec.control)
    dropped = {v: n for v, n in found.items() if v not in (spec.treatment, spec.control)}
    table = table.filter(pa.array(kept))
    y = table.column(schema.target).to_numpy(zero_copy_only=False)
    if np.isnan(y.astype(float)).any():
        raise TrainingError(f"the outcome {schema.target} has missing values")
    return features, Arms(
        table, (arm[kept] == spec.treatment).astype(np.int8), y.astype(np.int8), dropped
    )


def split_rows(
    treated: np.ndarray, y: np.ndarray, *, valid_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training and hold-out row indices, stratified on arm × outcome."""
    strata = 2 * treated.astype(np.int64) + y.astype(np.int64)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=valid_fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(strata.size), strata))
    return np.sort(train), np.sort(test)


def _fit_rows(
    preprocessor: Preprocessor,
    matrix: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    *,
    learner: str,
    spec: UpliftSpec,
) -> UpliftModel:
    """``learner`` fitted on ``rows`` of the matrix with ``spec``'s parameters and propensity."""
    return fit_uplift(
        preprocessor,
        matrix[rows],
        treated[rows],
        y[rows],
        learner=learner,
        params=spec.params,
        propensity=spec.propensity,
    )


def cross_validated_qini(
    preprocessor: Preprocessor,
    matrix: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    *,
    learners: list[str],
    spec: UpliftSpec,
) -> dict[str, list[float]]:
    """Normalised Qini of each learner on each fold (stratified on arm × outcome)."""
    strata = 2 * treated.astype(np.int64) + y.astype(np.int64)
    folds = StratifiedKFold(spec.folds, shuffle=True, random_state=spec.params.seed)
    scores: dict[str, list[float]] = {name: [] for name in learners}
    for fit_rows, score_rows in folds.split(matrix, strata):
        for name in learners:
            model = _fit_rows(preprocessor, matrix, treated, y, fit_rows, learner=name, spec=spec)
            uplift = model.uplift_matrix(matrix[score_rows])
            scores[name].append(qini_auc(y[score_rows], uplift, treated[score_rows]))
    return scores


def train_uplift(dataset: Path, spec: UpliftSpec) -> UpliftResult:
    """Fit and evaluate an uplift model on a stored randomized experiment."""
    spec.validate()
    schema, arms = read_arms(dataset, spec)
    train, test = split_rows(
        arms.treated, arms.y, valid_fraction=spec.valid_fraction, seed=spec.params.seed
    )
    preprocessor = Preprocessor(schema).fit(arms.table.take(pa.array(train)).to_batches())
    matrix = preprocessor.transform(arms.table)
    t, y = arms.treated, arms.y
    learners = sorted(LEARNER_BOOSTERS) if spec.learner == AUTO else [spec.learner]
    cv: dict[str, list[float]] = {}
    if spec.learner == AUTO:
        cv = cross_validated_qini(
            preprocessor, matrix[train], t[train], y[train], learners=learners, spec=spec
        )
    chosen = max(learners, key=lambda name: float(np.mean(cv[name]))) if cv else learners[0]
    model = _fit_rows(preprocessor, matrix, t, y, train, learner=chosen, spec=spec)
    holdout = evaluate_uplift(y[test], model.uplift_matrix(matrix[test]), t[test])
    model.metadata[QUANTILES_KEY] = uplift_quantiles(model.uplift_matrix(matrix[train]))
    model.reference = build_reference(model, arms.table.take(pa.array(train)).to_batches())
    model.metadata.update(
        treatment_col=spec.treatment_col,
        treatment=spec.treatment,
        control=spec.control,
        target=schema.target,
        schema=schema.to_dict(),
        data_fingerprint=load_info(dataset)[1].fingerprint,
        rows={"train": int(train.size), "test": int(test.size)},
        metrics=holdout.headline(),
        cv_qini={name: list(values) for name, values in cv.items()} or None,
    )
    rows = {
        "train": int(train.size),
        "test": int(test.size),
        "treated": int(t.sum()),
        "control": int(t.size - t.sum()),
    }
    return UpliftResult(model, holdout, cv, rows, arms.dropped)
