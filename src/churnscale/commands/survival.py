"""The survival half of ``churnscale train`` (``--duration-col``): its flags and its summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnscale.commands.output import print_json, print_leakage, print_places
from churnscale.exceptions import ConfigError
from churnscale.terminal import stdout_console

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.training.survival import SurvivalOutcome

DurationOpt = Annotated[
    str | None,
    typer.Option(
        "--duration-col",
        help="Train a survival model: the column of time to churn (or to the data's end).",
    ),
]
EventOpt = Annotated[
    str | None, typer.Option("--event-col", help="With --duration-col: the churn event column.")
]
EventLabelOpt = Annotated[
    str | None, typer.Option("--event-label", help="Value of --event-col that means churn.")
]
HorizonsOpt = Annotated[
    str | None,
    typer.Option("--horizons", help="Survival horizons, e.g. 3,6,12 (default: event quartiles)."),
]
DistributionOpt = Annotated[
    str | None,
    typer.Option("--distribution", help="AFT distribution: normal or logistic (default: chosen)."),
]
SigmaOpt = Annotated[
    float | None, typer.Option("--sigma", help="AFT scale to start from (default: chosen).")
]


def parse_horizons(text: str | None) -> tuple[float, ...] | None:
    """``3,6,12`` as numbers."""
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError("--horizons", expected="numbers such as 3,6,12", received=text) from None
    if not values or min(values) <= 0:
        raise ConfigError("--horizons", expected="positive numbers such as 3,6,12", received=text)
    return tuple(sorted(set(values)))


def survival_flags_alone(duration: str | None, event: str | None, flags: dict[str, Any]) -> None:
    """Refuse survival flags without ``--duration-col`` and binary-only flags with it."""
    if duration is None:
        given = [name for name, value in flags.items() if value is not None]
        if event is not None or given:
            raise ConfigError(
                "--duration-col", expected="set with --event-col, --horizons, ...", received=None
            )


def run(
    dataset: Path,
    settings: Settings,
    *,
    duration: str,
    horizons: str | None,
    distribution: str | None,
    sigma: float | None,
    common: dict[str, Any],
    as_json: bool,
) -> None:
    """Train, register and print one survival model."""
    from churnscale.training.survival import SurvivalJob, run_survival_training

    job = SurvivalJob(
        dataset=dataset,
        duration=duration,
        horizons=parse_horizons(horizons),
        distribution=distribution,
        sigma=sigma,
        **common,
    )
    outcome = run_survival_training(job, settings)
    if as_json:
        print_json(outcome.summary())
        return
    print_outcome(outcome)


def print_outcome(outcome: SurvivalOutcome) -> None:
    """The hold-out metrics, warnings and where everything went."""
    from rich.table import Table

    table = Table(title=f"{outcome.version or outcome.bundle}: time to churn")
    table.add_column("metric")
    table.add_column("hold-out", justify="right")
    for name, value in outcome.assessment.metrics.items():
        table.add_row(name, f"{value:.4f}")
    out = stdout_console()
    out.print(table)
    print_leakage(outcome.assessment.warnings)
    curve = outcome.model.metadata["survival"]
    out.print(
        f"AFT {curve['distribution']} sigma {curve['sigma']:.4f}; outputs: "
        + ", ".join(outcome.model.outputs)
    )
    print_places(outcome)
