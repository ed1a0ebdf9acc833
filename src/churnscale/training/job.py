"""One LightGBM training job end to end: data → (CV folds) → model → assessment → registry.

``churnscale train`` is this module with flags (``--model mlp`` is
:func:`churnscale.neural.job.run_mlp_training`). Both record their run the same way
(:mod:`churnscale.training.recording`): parameters, per-fold and hold-out metrics, the HTML
report and the bundle are logged inside one MLflow run, and the bundle becomes a new
registered version; if any step fails the run is marked FAILED and nothing is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from churnscale.config import Settings
from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.evaluation.assessment import ProfitSettings
from churnscale.evaluation.metrics import Evaluation, evaluate_scores
from churnscale.exceptions import ConfigError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import expect_model, load_model
from churnscale.training.local import TrainParams, TrainResult, train_local
from churnscale.training.plan import SplitSpec
from churnscale.training.recording import (
    Fitted,
    MetricLog,
    RunRecord,
    TrainOutcome,
    record_training,
    report_path,
    started_at,
)
from churnscale.training.refit import Evaluated, refit_all_rows, report_provenance, served_summary

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
        """Refuse flag combinations that cannot work, before any work starts (the LightGBM
        parameters are checked by the trainer that uses them)."""
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

    def run_record(
        self, *, run_name: str, params: dict[str, Any], description: str, **extra: Any
    ) -> RunRecord:
        """Where this job is recorded (``extra``: the run's tags and parent)."""
        return RunRecord(
            dataset=self.dataset,
            profit=self.profit,
            experiment=self.experiment,
            name=self.name,
            run_name=run_name,
            params=params,
            description=description,
            register=self.register,
            out=self.out,
            **extra,
        )


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
            refit_after=job.refit and job.time_budget is None,
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
    log: MetricLog,
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
    loaded = load_model(job.init_model, settings)
    model = expect_model(loaded, LightGBMModel, reference=job.init_model, purpose="--init-model")
    parent: str | None = None
    if not Path(job.init_model).expanduser().is_dir():
        from churnscale.registry import Registry

        parent = Registry(settings).lookup(job.init_model).reference
    model.metadata["reference"] = parent or str(Path(job.init_model).resolve())
    return model, parent


def run_params(job: TrainJob) -> dict[str, Any]:
    """The job's parameters as the MLflow run records them (flat names)."""
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


def run_training(
    job: TrainJob, settings: Settings, *, on_round: RoundCallback | None = None
) -> TrainOutcome:
    """Train, assess, report and (unless ``job.register`` is off) register one LightGBM model."""
    job.validate()
    if job.model != "lightgbm":
        raise ConfigError("--model", expected="lightgbm for this job", received=job.model)
    schema, _ = load_info(job.dataset)
    init, parent = _parent(job, settings)
    stamp = started_at()
    report = report_path(job.report, settings, name=job.name, stamp=stamp)

    def train(log: MetricLog) -> Fitted:
        folds, carried = _cross_validate(job, schema, init, on_round, log)
        result, model = _final(job, schema, init, on_round, carried)  # evaluated, served
        rows = f"{served_summary(model)['rows']:,} train rows"
        details = {
            "fingerprint": model.metadata.get("data_fingerprint"),
            "best iteration": result.best_iteration,
            **report_provenance(result.rows, model),
            "parent": parent,
        }
        title = f"{job.name}: {len(model.feature_names)} features, {rows}"
        best = result.best_iteration
        return Fitted.of(result, best, title=title, details=details, folds=folds, model=model)

    record = job.run_record(
        run_name=f"{job.name}-{stamp}",
        params=run_params(job),
        description=f"trained on {job.dataset}",
        tags={"churnscale.kind": "train", "churnscale.parent": parent or ""},
        parent=parent,
        cv=job.cv,
    )
    return record_training(record, settings, report=report, train=train)
