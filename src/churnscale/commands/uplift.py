"""The uplift flags of ``churnscale train`` and what the command does with them.

``churnscale train DATA --treatment-col segment --treatment "Womens E-Mail" --control
"No E-Mail" --target visit`` trains an uplift model
(:func:`churnscale.training.uplift_job.run_uplift_training`) instead of a churn classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnscale.commands.output import print_json, print_places
from churnscale.exceptions import ConfigError
from churnscale.terminal import stderr_console, stdout_console

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.training.uplift_job import UpliftOutcome

TreatmentColOpt = Annotated[
    str | None,
    typer.Option(
        "--treatment-col",
        help="Train an uplift model: the column holding each row's arm of a randomized "
        "experiment (needs --treatment and --control).",
    ),
]
TreatmentOpt = Annotated[
    str | None, typer.Option("--treatment", help="With --treatment-col: the treated arm's value.")
]
ControlOpt = Annotated[
    str | None, typer.Option("--control", help="With --treatment-col: the control arm's value.")
]
LearnerOpt = Annotated[
    str,
    typer.Option(
        "--learner", help="Uplift meta-learner: s, t, x, or auto (best cross-validated Qini)."
    ),
]
PropensityOpt = Annotated[
    str,
    typer.Option(
        "--propensity",
        help="Uplift propensity: share (treated share of the rows), model (estimated by "
        "LightGBM), or a known number in (0, 1).",
    ),
]


@dataclass(frozen=True)
class UpliftFlags:
    """The uplift flags as given (``column`` None: not an uplift run)."""

    column: str | None
    treatment: str | None
    control: str | None
    learner: str = "auto"
    propensity: str = "share"

    def check(self, model: str) -> bool:
        """Whether this is an uplift run; refuses half-given or conflicting flags."""
        if self.column is None:
            for flag, value in (("--treatment", self.treatment), ("--control", self.control)):
                if value is not None:
                    raise ConfigError(flag, expected="--treatment-col with it", received=value)
            return False
        for flag, value in (("--treatment", self.treatment), ("--control", self.control)):
            if value is None:
                raise ConfigError(flag, expected="the arm's value", received=None)
        if model != "lightgbm":
            raise ConfigError("--model", expected="lightgbm for an uplift model", received=model)
        return True

    def propensity_value(self) -> str | float:
        """``--propensity`` as the trainer takes it."""
        if self.propensity in ("share", "model"):
            return self.propensity
        try:
            return float(self.propensity)
        except ValueError:
            raise ConfigError(
                "--propensity", expected="share, model or a number", received=self.propensity
            ) from None


@dataclass(frozen=True)
class RecordFlags:
    """Where train records a model: --name (``churn``, the default, becomes ``uplift``),
    --experiment, --no-register, --out and --report."""

    name: str
    experiment: str
    register: bool
    out: Path | None
    report: Path | None


def run_uplift(
    flags: UpliftFlags,
    dataset: Path,
    settings: Settings,
    *,
    cv: int | None,
    valid_fraction: float,
    seed: int,
    threads: int,
    record: RecordFlags,
) -> UpliftOutcome:
    """Train, evaluate and record the uplift model the flags ask for."""
    from churnscale.training.uplift import UpliftSpec
    from churnscale.training.uplift_fit import UpliftParams
    from churnscale.training.uplift_job import UpliftJob, run_uplift_training

    column, treatment, control = flags.column, flags.treatment, flags.control
    if column is None or treatment is None or control is None:
        raise ConfigError(
            "--treatment-col", expected="with --treatment and --control", received=column
        )
    spec = UpliftSpec(
        treatment_col=column,
        treatment=treatment,
        control=control,
        learner=flags.learner,
        propensity=flags.propensity_value(),
        folds=cv or 3,
        valid_fraction=valid_fraction,
        params=UpliftParams(seed=seed, threads=threads),
    )
    spec.validate()
    name = "uplift" if record.name == "churn" else record.name  # train's default is a churn name
    job = UpliftJob(
        dataset=dataset,
        spec=spec,
        name=name,
        experiment=record.experiment,
        register=record.register,
        out=record.out,
        report=record.report,
    )
    return run_uplift_training(job, settings)


def print_uplift(outcome: UpliftOutcome, *, as_json: bool) -> None:
    """The summary of an uplift run: JSON, or a few lines."""
    summary = outcome.summary()
    if as_json:
        print_json(summary)
        return
    out, holdout = stdout_console(), summary["holdout"]
    for value, count in summary["filtered_rows"].items():
        stderr_console().print(f"left out {count:,} rows with another arm: {value}")
    for name, cv in summary["cv_qini"].items():
        out.print(f"learner {name}: cross-validated Qini {cv['mean']:.4f} ± {cv['std']:.4f}")
    low, high = holdout["ate_interval"]
    out.print(
        f"{summary['learner'].upper()}-learner on {summary['rows']['test']:,} hold-out rows: "
        f"Qini {holdout['qini']:.4f}, AUUC {holdout['auuc']:.4f}, "
        f"uplift in top 30% {holdout['uplift_at_30']:.4f}, "
        f"average effect {holdout['ate']:.4f} [{low:.4f}, {high:.4f}]"
    )
    print_places(outcome)
