"""``tune``: search LightGBM parameters, track each trial in MLflow, register the best model.

Every trial is scored by K-fold CV on the rows *outside* the final model's hold-out, so the
hold-out AUC of the final model, trained with the best parameters and registered, was never
used to choose them. MLflow is written by this process only: each finished trial becomes a
run nested under the invocation's parent run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

from churnscale.config import Settings
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry
from churnscale.registry.tracking import TrackedRun
from churnscale.registry.versions import ModelVersion
from churnscale.training.local import train_local
from churnscale.training.plan import SplitSpec
from churnscale.training.refit import Evaluated, refit_all_rows, served_summary
from churnscale.training.search import COMPLETE, TrialRecord, params_from
from churnscale.training.study import Search, TuneSpec, prepare_study, storage_url

__all__ = ["Search", "TuneResult", "TuneSpec", "prepare_study", "storage_url", "tune"]

_RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


@dataclass
class TuneResult:
    """What a tuning run found and registered."""

    study: str
    records: list[TrialRecord]
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    study_trials: int
    holdout_auc: float
    model: LightGBMModel
    version: ModelVersion | None
    parent_run_id: str
    seconds: float


def track_trial(
    registry: Registry, parent: TrackedRun, record: TrialRecord, *, spec: TuneSpec, study: str
) -> None:
    """Log one trial as an MLflow run nested under ``parent`` (KILLED when pruned)."""
    tags = {"optuna.study": study, "optuna.trial": str(record.number), "optuna.state": record.state}
    if record.error:
        tags["error"] = record.error[:5000]
    with registry.run(
        experiment=spec.experiment,
        run_name=f"trial {record.number}",
        params=record.params,
        tags=tags,
        parent_run_id=parent.run_id,
    ) as run:
        metrics = {"seconds": record.seconds, "folds_done": float(len(record.fold_aucs))}
        if record.value is not None:
            metrics["cv_auc"] = record.value
        run.log_metrics(metrics)
        run.log_metric_history("fold_auc", list(enumerate(record.fold_aucs)))
        run.log_metric_history("valid_auc", record.curve)
        run.end_as(_RUN_STATUS[record.state])


def train_best(dataset: Path, spec: TuneSpec, best: dict[str, Any]) -> tuple[LightGBMModel, float]:
    """Train the final model with the best parameters and measure its AUC on the untouched
    hold-out; then (unless ``spec.refit`` is off) refit it on every row, hold-out included,
    with the rounds carried over (:mod:`churnscale.training.refit`)."""
    split = SplitSpec(seed=spec.seed, valid_fraction=spec.valid_fraction)
    params = params_from(best, spec.base)
    result = train_local(dataset, split=split, params=params)
    holdout_auc = float(roc_auc_score(result.y_holdout, result.scores))
    if not spec.refit:
        return result.model, holdout_auc
    model, _ = refit_all_rows([Evaluated.of(result)], dataset, split=split, params=params)
    return model, holdout_auc


def tune(
    dataset: Path,
    spec: TuneSpec,
    settings: Settings,
    *,
    on_record: Callable[[TrialRecord], None] | None = None,
) -> TuneResult:
    """Search, track every trial as a nested MLflow run, then train and register the best."""
    start = time.perf_counter()
    search = Search.prepare(dataset, spec, url=storage_url(settings, spec.storage))
    registry = Registry(settings)
    params = {
        "study": search.name,
        "trials": spec.trials,
        "cv": spec.cv,
        "seed": spec.seed,
        "valid_fraction": spec.valid_fraction,
        "cluster": spec.cluster or f"jobs:{spec.jobs}",
        "dataset": str(dataset),
    }
    with registry.run(
        experiment=spec.experiment,
        run_name=f"tune {search.name}",
        params=params,
        tags={"optuna.study": search.name},
    ) as parent:

        def track(record: TrialRecord) -> None:
            track_trial(registry, parent, record, spec=spec, study=search.name)
            if on_record is not None:
                on_record(record)

        records = search.run(track)
        best = search.best(records)
        model, holdout_auc = train_best(dataset, spec, best.params)
        model.metadata["tuning"] = {
            "study": search.name,
            "best_trial": best.number,
            "cv_auc": best.value,
            "holdout_auc": holdout_auc,
            "holdout_auc_from": "a model trained without the hold-out rows",
            "served": served_summary(model),
        }
        parent.log_params({f"best.{k}": v for k, v in best.params.items()})
        metrics = {"best_cv_auc": float(best.value), "holdout_auc": holdout_auc}
        parent.log_metrics({**metrics, **_counts(records)})
        version = _register(model, parent, spec, settings)
    return TuneResult(
        search.name,
        records,
        best.number,
        float(best.value),
        dict(best.params),
        search.size(),
        holdout_auc,
        model,
        version,
        parent.run_id,
        time.perf_counter() - start,
    )


def _counts(records: list[TrialRecord]) -> dict[str, float]:
    states = [r.state for r in records]
    return {f"trials_{s.lower()}": float(states.count(s)) for s in (COMPLETE, "PRUNED", "FAIL")}


def _register(
    model: LightGBMModel, parent: TrackedRun, spec: TuneSpec, settings: Settings
) -> ModelVersion:
    settings.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.home, prefix=".tune-") as tmp:
        bundle = model.save(Path(tmp) / "model")
        description = f"tuned by study {model.metadata['tuning']['study']}"
        return parent.register_bundle(bundle, name=spec.model_name, description=description)
