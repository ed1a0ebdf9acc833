"""One survival training job: data → AFT trees → hold-out assessment → report → registry.

``churnscale train DATA --duration-col tenure --event-col Churn --event-label Yes`` is this
module. The split, the streamed Preprocessor fit and the binned Datasets are the binary
model's (:mod:`churnscale.training.local`): the event column is the dataset's target, the
duration column is left out of the features (schema metadata ``duration_column``) and read
once per side into 5 bytes a row. The evaluated model (trained on the training side, early
stopping on its hashed 10%) is the one saved and served: a survival model is not refitted on
every row. Recording is the binary job's: one MLflow run with parameters, metrics, the HTML
report and the bundle, registered as a new version; nothing registered if any step fails.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from churnscale.config import Settings
from churnscale.data.schema import DURATION_KEY, Role, Schema
from churnscale.data.store import iter_dataset, load_info
from churnscale.evaluation.assessment import sample_table
from churnscale.evaluation.survival_assessment import (
    Outcomes,
    SurvivalAssessment,
    assess_survival,
    duration_leakage,
    write_survival_report,
)
from churnscale.exceptions import ConfigError, SchemaError, TrainingError
from churnscale.features.spec import monotone_constraints
from churnscale.model.survival import SurvivalModel
from churnscale.monitoring.reference import build_reference
from churnscale.training.aft import Durations, boost_aft, candidate_list
from churnscale.training.local import (
    EARLY_STOP_FRACTION,
    TrainParams,
    check_sides,
    data_params,
    model_metadata,
    side_dataset,
)
from churnscale.training.plan import TEST, TRAIN, VALID, SplitPlan, SplitSpec, plan_split
from churnscale.training.recording import report_path, started_at
from churnscale.training.sequence import (
    SideSequence,
    bin_sample_indices,
    fit_with_bin_sample,
    iter_side_tables,
)

#: Quantiles of the training side's event durations used as horizons when none are given.
DEFAULT_QUANTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class SurvivalJob:
    """What to train (a duration column besides the event target) and where to record it."""

    dataset: Path
    duration: str
    horizons: tuple[float, ...] | None = None
    distribution: str | None = None
    sigma: float | None = None
    params: TrainParams = field(default_factory=TrainParams)
    split: SplitSpec = field(default_factory=SplitSpec)
    name: str = "churn"
    experiment: str = "churnscale"
    register: bool = True
    out: Path | None = None
    report: Path | None = None

    def validate(self, schema: Schema) -> None:
        """Refuse what cannot work before any data is read."""
        if self.duration not in schema.names:
            raise SchemaError(
                "--duration-col names no column of the dataset", missing=[self.duration]
            )
        if schema.role_of(self.duration) is not Role.NUMERIC:
            raise ConfigError(
                "--duration-col",
                expected="a numeric column",
                received=schema.role_of(self.duration),
            )
        if self.horizons is not None and (not self.horizons or min(self.horizons) <= 0):
            raise ConfigError("--horizons", expected="positive durations", received=self.horizons)
        if not self.register and self.out is None:
            raise ConfigError("--out", expected="a bundle path when --no-register", received=None)
        if self.out is not None and self.out.exists():
            raise ConfigError("--out", expected="a path that does not exist", received=self.out)


@dataclass
class SurvivalOutcome:
    """What a survival job produced."""

    model: SurvivalModel
    assessment: SurvivalAssessment
    report: Path
    bundle: Path | None
    version: str | None
    run_id: str | None
    rows: dict[str, int]
    best_iteration: int

    def summary(self) -> dict[str, Any]:
        """The JSON summary ``train --json`` prints."""
        curve = self.model.metadata["survival"]
        return {
            "model": self.version,
            "model_type": self.model.model_type,
            "run_id": self.run_id,
            "bundle": str(self.bundle) if self.bundle else None,
            "report": str(self.report),
            "rows": self.rows,
            "best_iteration": self.best_iteration,
            "outputs": list(self.model.outputs),
            "survival": curve,
            **self.assessment.summary(),
            "served_model": {"rows": self.rows["train"], "all_rows": False},
        }


def side_durations(plan: SplitPlan, side: int, column: str) -> np.ndarray:
    """The durations of ``side``'s rows, in storage order."""
    parts = [
        np.asarray(t.column(column).to_numpy(zero_copy_only=False), np.float64)
        for t in iter_side_tables(plan, side, [column])
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def default_horizons(time: np.ndarray, event: np.ndarray) -> tuple[float, ...]:
    """Quartiles of the event durations (3 significant digits)."""
    source = time[event] if event.any() else time
    values = np.quantile(source, DEFAULT_QUANTILES)
    return tuple(sorted({float(f"{v:.3g}") for v in values if v > 0})) or (float(source.max()),)


def _outcomes(plan: SplitPlan, side: int, column: str) -> Outcomes:
    return Outcomes(side_durations(plan, side, column), plan.labels[side].astype(bool))


def fit_survival(
    job: SurvivalJob,
    schema: Schema,
    fingerprint: str,
    on_round: Callable[[str, int, float], None] | None,
) -> tuple[SurvivalModel, Outcomes, Outcomes, np.ndarray, dict[str, int]]:
    """The fitted model, the training and hold-out outcomes, hold-out locations, rows."""
    plan = plan_split(job.dataset, schema, job.split, early_stop_fraction=EARLY_STOP_FRACTION)
    rows = check_sides(plan, TEST)
    train_y, valid_y, test_y = (_outcomes(plan, s, job.duration) for s in (TRAIN, VALID, TEST))
    positive = train_y.time[train_y.time > 0]
    floor = float(positive.min()) / 2.0 if positive.size else 1.0
    binning = data_params(job.params.lightgbm_params())
    pre, sample = fit_with_bin_sample(plan, schema, bin_sample_indices(rows["train"], binning))
    train = side_dataset(plan, TRAIN, pre, binning, init_model=None, sample=sample)
    valid = side_dataset(plan, VALID, pre, binning, init_model=None, reference=train)
    constraints = monotone_constraints(schema.metadata, pre.feature_names)
    valid_rows = SideSequence(plan, VALID, pre)
    fit = boost_aft(
        train,
        valid,
        Durations.of(train_y.time, train_y.event, floor=floor),
        Durations.of(valid_y.time, valid_y.event, floor=floor),
        job.params,
        candidates=candidate_list(job.distribution, job.sigma),
        valid_matrix=lambda: np.concatenate(list(valid_rows.iter_matrices())),
        constraints=[-c for c in constraints] if constraints else None,  # risk up = time down
        on_round=on_round,
    )
    horizons = job.horizons or default_horizons(train_y.time, train_y.event)
    fit.booster.best_iteration = fit.best_iteration
    metadata = model_metadata(schema, fingerprint, job.params, job.split, rows, fit.booster)
    metadata["survival"] = {
        "duration_column": job.duration,
        "event_column": schema.target,
        "event_label": schema.positive_label,
        "distribution": fit.aft.distribution,
        "sigma": fit.aft.sigma,
        "duration_floor": floor,
        "horizons": list(horizons),
        "candidates": fit.candidates,
    }
    model = SurvivalModel(
        pre, fit.booster, metadata, aft=fit.aft, intercept=fit.intercept, horizons=horizons
    )
    mu = np.concatenate(
        [model.location(m) for m in SideSequence(plan, TEST, pre).iter_matrices()] or [np.empty(0)]
    )
    return model, train_y, test_y, mu, rows


def _assess(
    job: SurvivalJob, model: SurvivalModel, train_y: Outcomes, test_y: Outcomes, mu: np.ndarray
) -> SurvivalAssessment:
    assessment = assess_survival(train_y, test_y, mu, model.aft.survival, model.horizons)
    sample = sample_table(iter_dataset(job.dataset, batch_rows=65_536))
    schema = model.preprocessor.schema
    numeric = [c.name for c in schema.features if c.role is Role.NUMERIC]
    assessment.warnings = duration_leakage(sample, numeric, job.duration)
    assessment.importance = model.importance()
    model.reference = build_reference(model, sample.to_batches())
    model.metadata.update(
        metrics=assessment.metrics,
        leakage_warnings=[w.message for w in assessment.warnings],
    )
    return assessment


def run_survival_training(
    job: SurvivalJob,
    settings: Settings,
    *,
    on_round: Callable[[str, int, float], None] | None = None,
) -> SurvivalOutcome:
    """Train, assess, report and (unless ``job.register`` is off) register a survival model."""
    stored, info = load_info(job.dataset)
    job.validate(stored)
    schema = replace(stored, metadata={**stored.metadata, DURATION_KEY: job.duration})
    stamp = started_at()
    report = report_path(job.report, settings, name=job.name, stamp=stamp)

    def fit_and_report() -> tuple[SurvivalModel, SurvivalAssessment, dict[str, int]]:
        model, train_y, test_y, mu, rows = fit_survival(job, schema, info.fingerprint, on_round)
        if test_y.event.sum() == 0:
            raise TrainingError("the hold-out has no churn events to judge a survival model on")
        assessment = _assess(job, model, train_y, test_y, mu)
        features = len(model.feature_names)
        title = f"{job.name}: time to churn, {features} features, {rows['train']:,} train rows"
        details = {"dataset": str(job.dataset), **model.metadata["survival"], "rows": rows}
        write_survival_report(assessment, report, title=title, metadata=details)
        return model, assessment, rows

    if not job.register:
        model, assessment, rows = fit_and_report()
        assert job.out is not None  # validate() refused this
        model.save(job.out)
        return SurvivalOutcome(
            model, assessment, report, job.out, None, None, rows, model.metadata["best_iteration"]
        )
    from churnscale.registry import Registry

    params = {
        **{k: v for k, v in job.params.to_dict().items() if k != "extra"},
        **{f"split.{k}": v for k, v in asdict(job.split).items()},
        "duration": job.duration,
        "horizons": str(job.horizons),
        "dataset": str(job.dataset),
    }
    with Registry(settings).run(
        experiment=job.experiment,
        run_name=f"{job.name}-{stamp}",
        params=params,
        tags={"churnscale.kind": "train", "churnscale.model_type": SurvivalModel.model_type},
    ) as run:
        model, assessment, rows = fit_and_report()
        run.log_metrics({f"test_{k}": v for k, v in assessment.metrics.items() if np.isfinite(v)})
        run.log_artifact(report, artifact_path="report")
        with tempfile.TemporaryDirectory(dir=settings.home) as scratch:
            bundle = job.out or Path(scratch) / "bundle"
            model.save(bundle)
            version = run.register_bundle(
                bundle, name=job.name, parent=None, description=f"time to churn on {job.dataset}"
            )
        return SurvivalOutcome(
            model,
            assessment,
            report,
            job.out,
            version.reference,
            run.run_id,
            rows,
            model.metadata["best_iteration"],
        )
