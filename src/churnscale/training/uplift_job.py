"""``churnscale train --treatment-col ...``: one uplift training job, recorded like the others.

The model is fitted and evaluated by :func:`churnscale.training.uplift.train_uplift`; the job
writes the uplift report, saves the bundle and, unless ``--no-register``, logs the run's
parameters, hold-out and per-learner CV metrics and the report in one MLflow run and registers
the bundle (the run is FAILED and nothing registered if a step fails).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churnscale.config import Settings
from churnscale.evaluation.uplift_report import render_uplift_report
from churnscale.exceptions import ConfigError
from churnscale.training.recording import report_path, started_at
from churnscale.training.uplift import UpliftResult, UpliftSpec, train_uplift


@dataclass(frozen=True)
class UpliftJob:
    """What to train and where to record it."""

    dataset: Path
    spec: UpliftSpec
    name: str = "uplift"
    experiment: str = "churnscale"
    register: bool = True
    out: Path | None = None
    report: Path | None = None


@dataclass
class UpliftOutcome:
    """What an uplift job produced."""

    result: UpliftResult
    report: Path
    bundle: Path | None
    version: str | None
    run_id: str | None

    def summary(self) -> dict[str, Any]:
        """The JSON summary ``train --json`` prints for an uplift model."""
        model = self.result.model
        return {
            "model": self.version,
            "run_id": self.run_id,
            "bundle": str(self.bundle) if self.bundle else None,
            "report": str(self.report),
            "model_type": model.model_type,
            "learner": model.learner,
            "propensity": model.propensity,
            "rows": self.result.rows,
            "filtered_rows": self.result.dropped,
            "cv_qini": {
                name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v}
                for name, v in self.result.cv.items()
            },
            "holdout": self.result.holdout.to_dict(),
        }


def _params(job: UpliftJob) -> dict[str, Any]:
    spec = job.spec
    return {
        "model": "uplift",
        "treatment_col": spec.treatment_col,
        "treatment": spec.treatment,
        "control": spec.control,
        "learner": spec.learner,
        "propensity": spec.propensity,
        "cv": spec.folds,
        "valid_fraction": spec.valid_fraction,
        **asdict(spec.params),
    }


def _write_report(result: UpliftResult, job: UpliftJob, report: Path) -> None:
    model = result.model
    details = {
        "dataset": str(job.dataset),
        "learner": model.learner,
        "arms": f"{job.spec.treatment} (treated) vs {job.spec.control} (control)",
        "rows": result.rows,
        "filtered rows (other arms)": result.dropped or "none",
    }
    title = f"{job.name}: uplift ({model.learner.upper()}-learner) on {model.metadata['target']}"
    render_uplift_report(result.holdout, path=report, title=title, cv=result.cv, metadata=details)


def run_uplift_training(job: UpliftJob, settings: Settings) -> UpliftOutcome:
    """Train, evaluate, report and (unless ``job.register`` is off) register an uplift model."""
    job.spec.validate()
    if job.out is not None and job.out.exists():
        raise ConfigError("--out", expected="a path that does not exist", received=job.out)
    stamp = started_at()
    report = report_path(job.report, settings, name=job.name, stamp=stamp)
    if not job.register:
        if job.out is None:
            raise ConfigError("--out", expected="a bundle path when --no-register", received=None)
        result = train_uplift(job.dataset, job.spec)
        _write_report(result, job, report)
        result.model.save(job.out)
        return UpliftOutcome(result, report, job.out, None, None)
    from churnscale.registry import Registry

    with Registry(settings).run(
        experiment=job.experiment, run_name=f"{job.name}-uplift-{stamp}", params=_params(job)
    ) as run:
        result = train_uplift(job.dataset, job.spec)
        _write_report(result, job, report)
        metrics = {f"test_{k}": v for k, v in result.holdout.headline().items()}
        for name, values in result.cv.items():
            metrics[f"cv_qini_{name}_mean"] = float(np.mean(values))
        run.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        run.log_artifact(report, artifact_path="report")
        with tempfile.TemporaryDirectory(dir=settings.home) as scratch:
            bundle = job.out or Path(scratch) / "bundle"
            result.model.save(bundle)
            version = run.register_bundle(
                bundle,
                name=job.name,
                parent=None,
                description=f"uplift model trained on {job.dataset}",
            )
        return UpliftOutcome(result, report, job.out, version.reference, run.run_id)
