"""One tuning trial: the search space, and a cross-validated score with pruning.

A trial draws :class:`TrainParams` from the search space, trains on ``cv`` hashed folds of the
rows *outside* the final model's hold-out (:class:`~churnscale.training.plan.Exclusion`), and
scores each fold's model on that fold. While boosting, the best early-stopping AUC so far is
reported to Optuna every ``report_every`` rounds (at step ``fold * max_rounds + round``, so
every trial is compared with the others on the same fold and round), and the pruner may stop
the trial there. :func:`run_trial` runs in the driver or on a Dask worker alike.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from churnscale.exceptions import ConfigError
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import Exclusion, SplitSpec

#: Rounds of every fold never reported to the pruner (early rounds favour high learning rates).
WARMUP_ROUNDS = 50
#: The inner folds hash with ``seed + INNER_SEED_OFFSET``: independent of the outer hold-out.
INNER_SEED_OFFSET = 1
COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"


def suggest_params(trial: Any, base: TrainParams) -> TrainParams:
    """``base`` with the tuned fields drawn from the search space by ``trial``."""
    gain = trial.suggest_float("min_gain_to_split", 0.0, 1.0)
    return replace(
        base,
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        num_leaves=trial.suggest_int("num_leaves", 4, 128, log=True),
        min_child_samples=trial.suggest_int("min_child_samples", 5, 200, log=True),
        feature_fraction=trial.suggest_float("feature_fraction", 0.3, 1.0),
        bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
        lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        class_weight=trial.suggest_categorical("class_weight", ["none", "balanced"]),
        extra={**base.extra, "min_gain_to_split": gain},
    )


def params_from(values: dict[str, Any], base: TrainParams) -> TrainParams:
    """``base`` with the values of a finished trial (``study.best_params``) put in."""
    tuned = {k: v for k, v in values.items() if k != "min_gain_to_split"}
    extra = dict(base.extra)
    if "min_gain_to_split" in values:
        extra["min_gain_to_split"] = values["min_gain_to_split"]
    return replace(base, **tuned, extra=extra)


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to run one trial of a study."""

    dataset: str
    study: str
    cv: int
    seed: int
    exclude: Exclusion | None
    base: TrainParams
    storage_url: str
    #: Trials the TPE sampler draws at random before it models the results.
    startup_trials: int = 10
    report_every: int = 10


@dataclass
class TrialRecord:
    """The outcome of one trial, returned to the driver for tracking."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    fold_aucs: list[float] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


class _Reporter:
    """``on_round`` callback: report the best AUC so far, ask the pruner, record the curve."""

    def __init__(self, trial: Any, spec: TrialSpec, fold: int, max_rounds: int) -> None:
        self.trial, self.spec, self.best = trial, spec, -1.0
        self.offset = fold * max_rounds
        self.curve: list[tuple[int, float]] = []

    def __call__(self, round_: int, auc: float) -> None:
        import optuna

        self.best = max(self.best, auc)
        if round_ < WARMUP_ROUNDS or round_ % self.spec.report_every:
            return
        step = self.offset + round_
        self.curve.append((step, self.best))
        self.trial.report(self.best, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")


def cross_validate(trial: Any, spec: TrialSpec, record: TrialRecord) -> float:
    """Mean hold-out AUC over the inner folds of the trial's parameters (may prune)."""
    params = suggest_params(trial, spec.base)
    record.params = dict(trial.params)
    split = SplitSpec(seed=spec.seed + INNER_SEED_OFFSET)
    for fold in range(spec.cv):
        reporter = _Reporter(trial, spec, fold, params.max_rounds)
        try:
            result = train_local(
                Path(spec.dataset),
                split=split,
                params=params,
                folds=spec.cv,
                fold=fold,
                exclude=spec.exclude,
                on_round=reporter,
            )
        finally:
            record.curve.extend(reporter.curve)
        record.fold_aucs.append(float(roc_auc_score(result.y_holdout, result.scores)))
    return float(np.mean(record.fold_aucs))


def open_storage(url: str) -> Any:
    """An Optuna RDB storage; SQLite waits up to 60 s for a lock held by another worker."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            "--storage", expected="a reachable study database", received=reason
        ) from None


def load_study(spec: TrialSpec, slot: int) -> Any:
    """The study with a TPE sampler seeded by ``seed + slot`` and the median pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=spec.seed + slot, n_startup_trials=spec.startup_trials, constant_liar=True
    )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2)
    return optuna.load_study(
        study_name=spec.study,
        storage=open_storage(spec.storage_url),
        sampler=sampler,
        pruner=pruner,
    )


def run_trial(spec: TrialSpec, slot: int) -> TrialRecord:
    """Ask the study for a trial, cross-validate it and tell the outcome (driver or worker);
    ``slot`` numbers the trial among all launched for the study (it seeds the sampler)."""
    import optuna

    study = load_study(spec, slot)
    trial = study.ask()
    record, start = TrialRecord(trial.number, FAIL, {}), time.perf_counter()
    try:
        record.value = cross_validate(trial, spec, record)
        record.state = COMPLETE
    except optuna.TrialPruned:
        record.state = PRUNED
    except Exception as exc:  # recorded as a FAIL trial; the study carries on
        record.error = f"{type(exc).__name__}: {exc}"
        record.error += "" if str(exc) else traceback.format_exc(limit=2)
    states = {COMPLETE: optuna.trial.TrialState.COMPLETE, PRUNED: optuna.trial.TrialState.PRUNED}
    state = states.get(record.state, optuna.trial.TrialState.FAIL)
    study.tell(trial, record.value if record.state == COMPLETE else None, state=state)
    record.seconds = time.perf_counter() - start
    return record
