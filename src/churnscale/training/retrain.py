"""Automated retraining: a challenger from recent data, judged against the champion, promoted
only when it is better by a margin.

Steps, each logged in MLflow (a parent run ``retrain`` with nested ``challenger`` and
``evaluate`` runs, in the experiment ``churnscale-retrain`` by default):

1. resolve ``NAME@ALIAS`` (the champion) and store the new data conformed to its schema;
2. split the new data by time: the latest ``holdout_fraction`` of its rows (by the time column)
   is the out-of-time hold-out window; the rest trains the challenger, either continuing the
   champion's trees (``mode="continue"``) or from scratch (``mode="refit"``);
3. score champion and challenger on the same hold-out rows and compare their ROC-AUC;
4. register the challenger (with its drift reference) as a new version whose parent is the
   champion; point ``NAME@ALIAS`` at it if its AUC beats the champion's by ``margin``,
   otherwise point ``NAME@challenger`` at it and leave the champion alias unchanged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from churnscale.data.schema import Schema
from churnscale.data.store import ingest, is_dataset, load_info
from churnscale.evaluation.metrics import Evaluation, evaluate_scores
from churnscale.exceptions import ConfigError, ModelNotFoundError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring.dataset import source_drift
from churnscale.monitoring.reference import build_reference
from churnscale.registry.references import ModelRef, parse_reference
from churnscale.training.local import EARLY_STOP_FRACTION, TrainParams, score_side, train_local
from churnscale.training.plan import TEST, TRAIN, SplitSpec, plan_split
from churnscale.training.sequence import iter_side_tables

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.registry import Registry

Mode = Literal["continue", "refit"]
EXPERIMENT = "churnscale-retrain"
CHALLENGER_ALIAS = "challenger"


@dataclass(frozen=True)
class RetrainSpec:
    """What to retrain, on which data, and how a challenger wins."""

    model: str
    data: str
    margin: float = 0.005
    time_column: str | None = None
    holdout_fraction: float = 0.2
    mode: Mode = "continue"
    experiment: str = EXPERIMENT
    params: TrainParams = field(default_factory=TrainParams)

    def validate(self) -> ModelRef:
        """Check the values and return the parsed ``NAME@ALIAS`` reference."""
        ref = parse_reference(self.model, allow_paths=False)
        if not isinstance(ref, ModelRef) or ref.alias is None:
            raise ConfigError(
                "--model", expected="a registry alias NAME@ALIAS", received=self.model
            )
        checks = [
            ("--margin", 0.0 <= self.margin < 1.0, "a number in [0, 1)"),
            ("--holdout-fraction", 0.0 < self.holdout_fraction < 1.0, "a number in (0, 1)"),
            ("--mode", self.mode in ("continue", "refit"), "continue or refit"),
        ]
        for name, ok, expected in checks:
            if not ok:
                value = {"--margin": self.margin, "--holdout-fraction": self.holdout_fraction}
                raise ConfigError(name, expected=expected, received=value.get(name, self.mode))
        self.params.validate()
        return ref


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retraining run decided, with the figures it decided on."""

    name: str
    alias: str
    champion_version: int
    challenger_version: int
    champion_auc: float
    challenger_auc: float
    margin: float
    promoted: bool
    holdout_rows: int
    run_id: str
    drifted_features: list[str]

    @property
    def summary(self) -> str:
        """One line: the decision and why."""
        verdict = (
            f"promoted {self.name}/{self.challenger_version} to @{self.alias}"
            if self.promoted
            else f"kept {self.name}/{self.champion_version} as @{self.alias}; "
            f"{self.name}/{self.challenger_version} is @{CHALLENGER_ALIAS}"
        )
        return (
            f"{verdict} (hold-out ROC-AUC challenger {self.challenger_auc:.4f} vs champion "
            f"{self.champion_auc:.4f}, margin {self.margin:g}, {self.holdout_rows:,} rows)"
        )


def alias_version(registry: Registry, ref: ModelRef) -> int:
    """The version ``NAME@ALIAS`` points at now."""
    for version in registry.list_models():
        if version.name == ref.name and ref.alias in version.aliases:
            return version.version
    raise ModelNotFoundError(str(ref), "no version carries this alias")


def retrain(spec: RetrainSpec, *, settings: Settings, registry: Registry) -> RetrainOutcome:
    """Run every step of automated retraining (see the module docstring)."""
    ref = spec.validate()
    champion_version = alias_version(registry, ref)
    champion = LightGBMModel.load(registry.resolve(f"{ref.name}/{champion_version}"))
    schema = champion.preprocessor.schema
    time_column = spec.time_column or schema.as_of_column or schema.time_column
    if time_column is None:
        raise ConfigError(
            "--time-col", expected="the date column that orders the new data", received=None
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.home, prefix=".retrain-") as work:
        dataset = _stored(spec.data, schema, Path(work) / "data", settings)
        split = SplitSpec(
            kind="time", valid_fraction=spec.holdout_fraction, time_column=time_column
        )
        params = _run_params(spec, ref, champion_version, time_column)
        with registry.run(experiment=spec.experiment, run_name="retrain", params=params) as run:
            drifted = _log_drift(run, champion, dataset, settings)
            challenger, registered = _challenger(
                registry, run.run_id, spec, champion, dataset, split, champion_version, ref
            )
            plan = plan_split(dataset, schema, split, early_stop_fraction=EARLY_STOP_FRACTION)
            labels = plan.labels[TEST]
            judged = {
                "champion": evaluate_scores(labels, score_side(champion, plan, TEST)),
                "challenger": evaluate_scores(labels, score_side(challenger, plan, TEST)),
            }
            _log_evaluation(registry, run.run_id, spec.experiment, judged)
            promoted = judged["challenger"].roc_auc >= judged["champion"].roc_auc + spec.margin
            alias = ref.alias if promoted else CHALLENGER_ALIAS
            registry.promote(ref.name, registered, alias=str(alias))
            run.log_metrics({"promoted": float(promoted), "challenger_version": registered})
            run.log_params({"decision": "promoted" if promoted else "rejected"})
    return RetrainOutcome(
        name=ref.name,
        alias=str(ref.alias),
        champion_version=champion_version,
        challenger_version=registered,
        champion_auc=judged["champion"].roc_auc,
        challenger_auc=judged["challenger"].roc_auc,
        margin=spec.margin,
        promoted=promoted,
        holdout_rows=int(labels.size),
        run_id=run.run_id,
        drifted_features=drifted,
    )


def _run_params(spec: RetrainSpec, ref: ModelRef, version: int, time_column: str) -> dict[str, Any]:
    return {
        "model": str(ref),
        "champion_version": version,
        "data": spec.data,
        "mode": spec.mode,
        "margin": spec.margin,
        "holdout_fraction": spec.holdout_fraction,
        "time_column": time_column,
    }


def _stored(source: str, schema: Schema, out: Path, settings: Settings) -> Path:
    """``source`` as a stored dataset in the champion's schema (ingested when it is not one)."""
    if is_dataset(source):
        stored, _ = load_info(Path(source))
        if stored.names != schema.names:
            raise ConfigError(
                "--data",
                expected=f"a dataset with the model's columns {schema.names}",
                received=stored.names,
            )
        return Path(source)
    ingest(
        source,
        out,
        schema=schema,
        storage_options=settings.storage_options(),
        batch_rows=settings.batch_rows,
        max_bad_fraction=settings.max_bad_fraction,
    )
    return out


def _log_drift(run: Any, champion: LightGBMModel, dataset: Path, settings: Settings) -> list[str]:
    """Drift of the new data against the champion's reference, logged on the parent run."""
    if champion.reference is None:
        return []
    report = source_drift(champion, champion.reference, str(dataset), settings=settings)
    metrics = {f"psi.{f.name}": f.psi for f in report.features}
    metrics["psi.prediction"] = report.prediction.psi
    metrics["drifted_features"] = float(len(report.drifted))
    run.log_metrics(metrics)
    return [f.name for f in report.drifted]


def _challenger(
    registry: Registry,
    parent_run: str,
    spec: RetrainSpec,
    champion: LightGBMModel,
    dataset: Path,
    split: SplitSpec,
    champion_version: int,
    ref: ModelRef,
) -> tuple[LightGBMModel, int]:
    """Train, profile, save and register the challenger in a nested run."""
    init = champion if spec.mode == "continue" else None
    with registry.run(
        experiment=spec.experiment,
        run_name="challenger",
        params={**spec.params.to_dict(), "mode": spec.mode},
        parent_run_id=parent_run,
    ) as child:
        result = train_local(
            dataset,
            schema=champion.preprocessor.schema,
            split=split,
            params=spec.params,
            init_model=init,
        )
        model = result.model
        model.metadata["parent"] = f"{ref.name}/{champion_version}"
        model.reference = build_reference(model, _train_batches(dataset, model, split))
        child.log_metrics({"best_iteration": float(result.best_iteration)})
        with tempfile.TemporaryDirectory(dir=dataset.parent) as out:
            bundle = model.save(Path(out) / "bundle")
            version = child.register_bundle(
                bundle,
                name=ref.name,
                parent=f"{ref.name}/{champion_version}",
                description=f"retrained ({spec.mode}) on {spec.data}",
            )
    return model, version.version


def _train_batches(
    dataset: Path, model: LightGBMModel, split: SplitSpec
) -> Iterator[pa.RecordBatch]:
    """The challenger's training rows (its drift reference), one row group at a time."""
    schema = model.preprocessor.schema
    plan = plan_split(dataset, schema, split, early_stop_fraction=EARLY_STOP_FRACTION)
    columns = [c.name for c in schema.features]
    for table in iter_side_tables(plan, TRAIN, columns):
        yield from table.to_batches()


def _log_evaluation(
    registry: Registry, parent_run: str, experiment: str, judged: dict[str, Evaluation]
) -> None:
    with registry.run(experiment=experiment, run_name="evaluate", parent_run_id=parent_run) as ev:
        ev.log_metrics(
            {f"{who}.{k}": v for who, e in judged.items() for k, v in e.headline().items()}
        )
