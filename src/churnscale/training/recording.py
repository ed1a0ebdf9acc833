"""Recording a training job, for every model kind: assessment, report, MLflow run, registry.

A kind's job (:func:`churnscale.training.job.run_training` for LightGBM,
:func:`churnscale.neural.job.run_mlp_training` for the MLP) fits its model inside the callback
it hands to :func:`record_training`, which runs it inside one MLflow run (or none with
``--no-register``), assesses the model on its hold-out, gives it its drift reference, writes
and logs the report and the metrics, saves the bundle and registers it. If any step fails the
run is marked FAILED and nothing is registered (:meth:`~churnscale.registry.Registry.run`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from churnscale.config import Settings
from churnscale.data.store import iter_dataset
from churnscale.evaluation.assessment import (
    Assessment,
    ProfitSettings,
    assess,
    sample_table,
    write_report,
)
from churnscale.evaluation.metrics import Evaluation
from churnscale.exceptions import ConfigError
from churnscale.model.contract import ChurnModel
from churnscale.monitoring.reference import build_reference
from churnscale.training.refit import provenance, served_summary

#: Logs metrics at a step (an MLflow run's ``log_metrics``, or nothing without a run).
MetricLog = Callable[[dict[str, float], int], None]


class HoldoutResult(Protocol):
    """What a trainer returns: its model, the hold-out labels and scores, the rows per side."""

    @property
    def model(self) -> ChurnModel: ...
    @property
    def y_holdout(self) -> np.ndarray: ...
    @property
    def scores(self) -> np.ndarray: ...
    @property
    def rows(self) -> dict[str, int]: ...


@dataclass
class Fitted:
    """A fitted model with its hold-out labels and scores, and how its report is titled (the
    report's details start with the dataset)."""

    model: ChurnModel
    y_holdout: np.ndarray
    scores: np.ndarray
    rows: dict[str, int]
    best_iteration: int
    title: str
    details: dict[str, Any]
    folds: list[Evaluation] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        result: HoldoutResult,
        best_iteration: int,
        *,
        title: str,
        details: dict[str, Any],
        folds: list[Evaluation] | None = None,
        model: ChurnModel | None = None,
    ) -> Fitted:
        """``result``'s hold-out, with the ``model`` to save when it is not the evaluated one
        (a refit on every row)."""
        saved = model if model is not None else result.model
        holdout = (result.y_holdout, result.scores)
        return cls(saved, *holdout, result.rows, best_iteration, title, details, folds or [])


@dataclass
class TrainOutcome:
    """What a training job produced."""

    model: ChurnModel
    assessment: Assessment
    report: Path
    bundle: Path | None
    version: str | None
    run_id: str | None
    rows: dict[str, int]
    best_iteration: int
    cv: int | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON summary ``train --json`` prints."""
        return {
            "model": self.version,
            "run_id": self.run_id,
            "bundle": str(self.bundle) if self.bundle else None,
            "report": str(self.report),
            "rows": self.rows,
            "best_iteration": self.best_iteration,
            "parent": self.model.metadata.get("parent"),
            **self.assessment.summary(),
            **provenance(self.rows, self.cv, self.model),
            **_trained_on(self.model),
        }


def _trained_on(model: ChurnModel) -> dict[str, Any]:
    """For a model that records where it trained (the MLP: ``cpu`` or ``cuda``, and its
    precision), those two; nothing for the others."""
    device = model.metadata.get("device")
    if device is None:
        return {}
    precision = model.metadata.get("params", {}).get("precision", "fp32")
    return {"device": device, "precision": precision}


@dataclass(frozen=True)
class RunRecord:
    """How one job is assessed (its data, the profit settings) and where it is recorded: its
    MLflow run and registered model, or only ``out``."""

    dataset: Path
    profit: ProfitSettings
    experiment: str
    name: str
    run_name: str
    params: dict[str, Any]
    description: str
    register: bool = True
    out: Path | None = None
    tags: dict[str, str] | None = None
    parent: str | None = None
    #: CV folds evaluated before the final model (named in the summary's provenance).
    cv: int | None = None


def started_at() -> str:
    """The job's timestamp, as it appears in run and report names."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def report_path(report: Path | None, settings: Settings, *, name: str, stamp: str) -> Path:
    """Where a job's HTML report goes (``--report``, else under ``<home>/reports``)."""
    report = report or settings.home / "reports" / f"{name}-{stamp}.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    return report


def assess_fitted(fitted: Fitted, record: RunRecord, report: Path) -> Assessment:
    """Assess the model on its hold-out, give it its drift reference, record both in its
    metadata and write the report."""
    model = fitted.model
    sample = sample_table(iter_dataset(record.dataset, batch_rows=65_536))
    assessment = assess(
        model,
        fitted.y_holdout,
        fitted.scores,
        sample,
        profit=record.profit,
        fold_evaluations=fitted.folds or None,
    )
    # The drift reference: feature and score histograms of the sample (bounded, one pass).
    model.reference = build_reference(model, sample.to_batches())
    model.metadata.update(
        metrics=assessment.evaluation.headline(),
        cv={m: list(v) for m, v in (assessment.folds or {}).items()} or None,
        leakage_warnings=[w.message for w in assessment.warnings],
        parent=record.parent or model.metadata.get("parent"),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    details = {"dataset": str(record.dataset), **fitted.details}
    write_report(assessment, report, title=fitted.title, metadata=details)
    return assessment


def record_training(
    record: RunRecord,
    settings: Settings,
    *,
    report: Path,
    train: Callable[[MetricLog], Fitted],
) -> TrainOutcome:
    """Run ``train`` inside one MLflow run and register its model (or, with ``--no-register``,
    without a run and keep the bundle at ``--out`` only)."""
    if not record.register:
        if record.out is None:
            raise ConfigError("--out", expected="a bundle path when --no-register", received=None)
        fitted = train(lambda _metrics, _step: None)
        assessment = assess_fitted(fitted, record, report)
        fitted.model.save(record.out)
        return _outcome(fitted, assessment, record, report)
    from churnscale.registry import Registry

    with Registry(settings).run(
        experiment=record.experiment,
        run_name=record.run_name,
        params=record.params,
        tags=record.tags,
    ) as run:
        fitted = train(lambda metrics, step: run.log_metrics(metrics, step=step))
        assessment = assess_fitted(fitted, record, report)
        run.log_metrics(_run_metrics(assessment, fitted))
        run.log_artifact(report, artifact_path="report")
        with tempfile.TemporaryDirectory(dir=settings.home) as scratch:
            bundle = record.out or Path(scratch) / "bundle"
            fitted.model.save(bundle)
            version = run.register_bundle(
                bundle, name=record.name, parent=record.parent, description=record.description
            )
        return _outcome(fitted, assessment, record, report, version.reference, run.run_id)


def _run_metrics(assessment: Assessment, fitted: Fitted) -> dict[str, float]:
    """Hold-out metrics, CV mean and std of each, the best iteration and the rows the saved
    model saw (finite ones only)."""
    folds = assessment.folds or {}
    metrics = {f"test_{k}": v for k, v in assessment.evaluation.headline().items()}
    metrics.update({f"cv_{k}_mean": m for k, (m, _) in folds.items()})
    metrics.update({f"cv_{k}_std": s for k, (_, s) in folds.items()})
    metrics["best_iteration"] = float(fitted.best_iteration)
    metrics["served_rows"] = float(served_summary(fitted.model)["rows"])
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def _outcome(
    fitted: Fitted,
    assessment: Assessment,
    record: RunRecord,
    report: Path,
    version: str | None = None,
    run_id: str | None = None,
) -> TrainOutcome:
    return TrainOutcome(
        model=fitted.model,
        assessment=assessment,
        report=report,
        bundle=record.out,
        version=version,
        run_id=run_id,
        rows=fitted.rows,
        best_iteration=fitted.best_iteration,
        cv=record.cv,
    )
