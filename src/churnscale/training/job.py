"""One training job end to end: data → (CV folds) → model → assessment → report → registry.

``churnscale train`` is this module with flags. Everything happens inside one MLflow run:
parameters, per-fold and hold-out metrics, the HTML report and the bundle are logged, and the
bundle becomes a new registered version. If any step fails the run is marked FAILED and
nothing is registered (:meth:`~churnscale.registry.Registry.run`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from churnscale.config import Settings
from churnscale.data.schema import Schema
from churnscale.data.store import iter_dataset, load_info
from churnscale.evaluation.assessment import (
    Assessment,
    ProfitSettings,
    assess,
    sample_table,
    write_report,
)
from churnscale.evaluation.metrics import Evaluation, evaluate_scores
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring.reference import build_reference
from churnscale.training.local import TrainParams, TrainResult, train_local
from churnscale.training.plan import SplitSpec
from churnscale.training.refit import (
    Evaluated,
    provenance,
    refit_all_rows,
    report_provenance,
    served_summary,
)

#: Called with (stage, round, valid AUC) while boosting; stage names the fold or "final".
RoundCallback = Callable[[str, int, float], None]


@dataclass(frozen=True)
class TrainJob:
    """What to train and where to record it."""

    dataset: Path
    params: TrainParams = field(default_factory=TrainParams)
    split: SplitSpec = field(default_factory=SplitSpec)
    cv: int | None = None
    cluster: str | None = None
    time_out_minutes: int = 5
    init_model: str | None = None
    name: str = "churn"
    experiment: str = "churnscale"
    register: bool = True
    out: Path | None = None
    report: Path | None = None
    profit: ProfitSettings = field(default_factory=ProfitSettings)
    model: str = "lightgbm"
    workers: int = 1
    #: ``MlpParams`` fields set by the train command's MLP flags (device, precision, batch_size)
    mlp: dict[str, Any] = field(default_factory=dict)
    #: Refit the served model on every row after evaluation (``--no-refit``: keep today's
    #: model, trained on the training side only).
    refit: bool = True
    #: ``--time-budget S``: search + ensemble served as one model (training/budget.py).
    time_budget: float | None = None

    def validate(self) -> None:
        """Refuse flag combinations that cannot work, before any work starts."""
        self.params.validate()
        if self.model not in ("lightgbm", "mlp"):
            raise ConfigError("--model", expected="lightgbm or mlp", received=self.model)
        if self.model == "mlp":
            for flag, value in (
                ("--cv", self.cv),
                ("--cluster", self.cluster),
                ("--init-model", self.init_model),
            ):
                if value is not None:
                    raise ConfigError(flag, expected="LightGBM (--model lightgbm)", received=value)
        if self.workers < 1:
            raise ConfigError("--workers", expected="at least 1", received=self.workers)
        if self.cv is not None and not 2 <= self.cv <= 20:
            raise ConfigError("--cv", expected="a number of folds from 2 to 20", received=self.cv)
        if self.cluster is not None and self.cv is not None:
            raise ConfigError(
                "--cv", expected="no --cluster (folds train locally)", received=self.cv
            )
        if self.cluster is not None and self.init_model is not None:
            raise ConfigError(
                "--init-model", expected="local training (no --cluster)", received=self.init_model
            )
        if not self.register and self.out is None:
            raise ConfigError("--out", expected="a bundle path when --no-register", received=None)
        if self.out is not None and self.out.exists():
            raise ConfigError("--out", expected="a path that does not exist", received=self.out)
        if self.cluster is not None:
            from churnscale.training.cluster import ClusterAddress

            ClusterAddress.parse(self.cluster)
        if self.time_budget is not None:
            from churnscale.training.budget import check_flags

            check_flags(self)
        if self.time_out_minutes < 1:
            raise ConfigError(
                "--time-out", expected="at least 1 minute", received=self.time_out_minutes
            )


@dataclass
class TrainOutcome:
    """What a training job produced."""

    model: LightGBMModel | Any
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
        }


def _train(
    job: TrainJob,
    schema: Schema,
    init: LightGBMModel | None,
    on_round: RoundCallback | None,
    *,
    stage: str,
    fold: int | None = None,
) -> TrainResult:
    callback = (lambda r, auc: on_round(stage, r, auc)) if on_round else None
    if job.cluster is not None:
        from churnscale.training.distributed import train_distributed

        return train_distributed(
            job.dataset,
            cluster=job.cluster,
            schema=schema,
            split=job.split,
            params=job.params,
            time_out_minutes=job.time_out_minutes,
        )
    return train_local(
        job.dataset,
        schema=schema,
        split=job.split,
        params=job.params,
        folds=job.cv if fold is not None else None,
        fold=fold or 0,
        init_model=init,
        on_round=callback,
    )


def _cross_validate(
    job: TrainJob,
    schema: Schema,
    init: LightGBMModel | None,
    on_round: RoundCallback | None,
    log: Callable[[dict[str, float], int], None],
) -> tuple[list[Evaluation], list[Evaluated]]:
    evaluations: list[Evaluation] = []
    carried: list[Evaluated] = []
    for fold in range(job.cv or 0):
        result = _train(job, schema, init, on_round, stage=f"fold {fold + 1}/{job.cv}", fold=fold)
        evaluation = evaluate_scores(result.y_holdout, result.scores)
        log({f"cv_{k}": v for k, v in evaluation.headline().items()}, fold)
        evaluations.append(evaluation)
        carried.append(Evaluated.of(result))
    return evaluations, carried


def _final(
    job: TrainJob,
    schema: Schema,
    init: LightGBMModel | None,
    on_round: RoundCallback | None,
    carried: list[Evaluated],
) -> tuple[TrainResult, LightGBMModel]:
    """The evaluated model's hold-out result and the model to save and serve: refitted on
    every row (training/refit.py), the ``--time-budget`` ensemble, or (``--no-refit``) the
    evaluated model itself."""
    if job.time_budget is not None:
        from churnscale.training.budget import train_with_budget

        budget = train_with_budget(
            job.dataset, job.time_budget, schema=schema, split=job.split, base=job.params
        )
        return budget.evaluated, budget.served
    result = _train(job, schema, init, on_round, stage="final")
    if not job.refit:
        return result, result.model
    served, _ = refit_all_rows(
        [*carried, Evaluated.of(result)],
        job.dataset,
        schema=schema,
        split=job.split,
        params=job.params,
        init_model=init,
        cluster=job.cluster,
        time_out_minutes=job.time_out_minutes,
    )
    return result, served


def _parent(job: TrainJob, settings: Settings) -> tuple[LightGBMModel | None, str | None]:
    """The model to continue from and its registry reference (``NAME/VERSION``) if it has one."""
    if job.init_model is None:
        return None, None
    from churnscale.model.loading import load_model

    model = load_model(job.init_model, settings)
    parent: str | None = None
    if not Path(job.init_model).expanduser().is_dir():
        from churnscale.registry import Registry

        parent = Registry(settings).lookup(job.init_model).reference
    model.metadata["reference"] = parent or str(Path(job.init_model).resolve())
    return model, parent


def _flat_params(job: TrainJob) -> dict[str, Any]:
    params = {k: v for k, v in job.params.to_dict().items() if k != "extra"}
    params.update({f"extra.{k}": v for k, v in job.params.extra.items()})
    params.update({f"split.{k}": v for k, v in asdict(job.split).items()})
    params.update(
        cv=job.cv,
        cluster=job.cluster,
        init_model=job.init_model,
        dataset=str(job.dataset),
        refit=job.refit,
    )
    return params


def _finish(
    job: TrainJob,
    result: TrainResult,
    folds: list[Evaluation],
    report: Path,
    parent: str | None,
    model: LightGBMModel,
) -> Assessment:
    """Assess ``result`` (the evaluated model's hold-out scores), record it in the served
    ``model``'s metadata (its explanations and drift reference) and write the report."""
    sample = sample_table(iter_dataset(job.dataset, batch_rows=65_536))
    assessment = assess(
        model,
        result.y_holdout,
        result.scores,
        sample,
        profit=job.profit,
        fold_evaluations=folds or None,
    )
    # The drift reference: feature and score histograms of the sample (bounded, one pass).
    model.reference = build_reference(model, sample.to_batches())
    model.metadata.update(
        metrics=assessment.evaluation.headline(),
        cv={m: list(v) for m, v in (assessment.folds or {}).items()} or None,
        leakage_warnings=[w.message for w in assessment.warnings],
        parent=parent or model.metadata.get("parent"),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    served = served_summary(model)
    title = f"{job.name}: {len(model.feature_names)} features, {served['rows']:,} train rows"
    metadata = {
        "dataset": str(job.dataset),
        "fingerprint": model.metadata.get("data_fingerprint"),
        "best iteration": result.best_iteration,
        **report_provenance(result.rows, model),
        "parent": parent,
    }
    write_report(assessment, report, title=title, metadata=metadata)
    return assessment


def run_training(
    job: TrainJob, settings: Settings, *, on_round: RoundCallback | None = None
) -> TrainOutcome | None:
    """Train, assess, report and (unless ``job.register`` is off) register one model; None on
    a torchrun rank other than 0 (``--model mlp`` under torchrun), which only trains."""
    job.validate()
    schema, _ = load_info(job.dataset)
    init, parent = _parent(job, settings)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    report = job.report or settings.home / "reports" / f"{job.name}-{stamp}.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    if job.model == "mlp":
        return _run_mlp(job, settings, schema, report, stamp)
    if not job.register:
        assert job.out is not None  # validate() guarantees it
        folds, carried = _cross_validate(job, schema, init, on_round, lambda _m, _s: None)
        result, served = _final(job, schema, init, on_round, carried)
        assessment = _finish(job, result, folds, report, parent, served)
        served.save(job.out)
        return TrainOutcome(
            served,
            assessment,
            report,
            job.out,
            None,
            None,
            result.rows,
            result.best_iteration,
            job.cv,
        )
    from churnscale.registry import Registry

    registry = Registry(settings)
    tags = {"churnscale.kind": "train", "churnscale.parent": parent or ""}
    with registry.run(
        experiment=job.experiment,
        run_name=f"{job.name}-{stamp}",
        params=_flat_params(job),
        tags=tags,
    ) as run:
        folds, carried = _cross_validate(
            job, schema, init, on_round, lambda m, step: run.log_metrics(m, step=step)
        )
        result, served = _final(job, schema, init, on_round, carried)
        assessment = _finish(job, result, folds, report, parent, served)
        metrics = {f"test_{k}": v for k, v in assessment.evaluation.headline().items()}
        metrics.update({f"cv_{k}_mean": m for k, (m, _) in (assessment.folds or {}).items()})
        metrics.update({f"cv_{k}_std": s for k, (_, s) in (assessment.folds or {}).items()})
        metrics["best_iteration"] = float(result.best_iteration)
        metrics["served_rows"] = float(served_summary(served)["rows"])
        run.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        run.log_artifact(report, artifact_path="report")
        with tempfile.TemporaryDirectory(dir=settings.home) as scratch:
            bundle = job.out or Path(scratch) / "bundle"
            served.save(bundle)
            version = run.register_bundle(
                bundle, name=job.name, parent=parent, description=f"trained on {job.dataset}"
            )
        return TrainOutcome(
            served,
            assessment,
            report,
            job.out,
            version.reference,
            run.run_id,
            result.rows,
            result.best_iteration,
            job.cv,
        )


def _run_mlp(
    job: TrainJob, settings: Settings, schema: Schema, report: Path, stamp: str
) -> TrainOutcome | None:
    """``--model mlp``: the PyTorch MLP trained with DDP over ``job.workers`` processes, or
    over torchrun's ranks, where ranks other than 0 train their shard and return None."""
    from churnscale.neural import MlpParams, MlpTrainResult, fit_mlp
    from churnscale.neural.launch import torchrun_rank

    def fit() -> MlpTrainResult | None:
        params = MlpParams(**{**job.mlp, "seed": job.params.seed})
        return fit_mlp(
            job.dataset, schema=schema, split=job.split, params=params, workers=job.workers
        )

    launched = torchrun_rank()
    if launched is not None and not launched.leads:
        fit()  # this rank's shard; rank 0 assesses, reports and registers, nothing is tracked
        return None

    def train() -> tuple[MlpTrainResult, Assessment]:
        result = fit()
        if result is None:  # pragma: no cover - only torchrun followers get None, handled above
            raise TrainingError("rank 0 received no model")
        sample = sample_table(iter_dataset(job.dataset, batch_rows=65_536))
        assessment = assess(
            result.model, result.y_holdout, result.scores, sample, profit=job.profit
        )
        result.model.metadata.update(
            metrics=assessment.evaluation.headline(),
            leakage_warnings=[w.message for w in assessment.warnings],
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        title = f"{job.name}: MLP on {len(result.model.feature_names)} features"
        metadata = {
            "dataset": str(job.dataset),
            "best epoch": result.best_epoch,
            "rows": result.rows,
            "workers": result.model.metadata["workers"],
        }
        write_report(assessment, report, title=title, metadata=metadata)
        return result, assessment

    if not job.register:
        assert job.out is not None  # validate() guarantees it
        result, assessment = train()
        result.model.save(job.out)
        return TrainOutcome(
            result.model, assessment, report, job.out, None, None, result.rows, result.best_epoch
        )
    from churnscale.registry import Registry

    workers = job.workers if launched is None else launched.world
    params = {**_flat_params(job), **job.mlp, "model": "mlp", "workers": workers}
    with Registry(settings).run(
        experiment=job.experiment, run_name=f"{job.name}-mlp-{stamp}", params=params
    ) as run:
        result, assessment = train()
        metrics = {f"test_{k}": v for k, v in assessment.evaluation.headline().items()}
        run.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        run.log_artifact(report, artifact_path="report")
        with tempfile.TemporaryDirectory(dir=settings.home) as scratch:
            bundle = job.out or Path(scratch) / "bundle"
            result.model.save(bundle)
            version = run.register_bundle(
                bundle, name=job.name, description=f"MLP trained on {job.dataset}"
            )
        return TrainOutcome(
            result.model,
            assessment,
            report,
            job.out,
            version.reference,
            run.run_id,
            result.rows,
            result.best_epoch,
        )
