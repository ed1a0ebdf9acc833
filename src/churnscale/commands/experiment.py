"""``churnscale experiment report | export``: what the service's experiment log says."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

LogArg = Annotated[Path, typer.Argument(help="The experiment log (CHURNSCALE_EXPERIMENT_LOG).")]


def register(app: typer.Typer) -> None:
    """Attach the ``experiment`` group."""
    group = typer.Typer(help="Experiments the service runs: report and export the log.")
    app.add_typer(group, name="experiment")

    @group.command("report")
    def report(
        log: LogArg,
        treat: Annotated[str, typer.Option("--treat", help="The treated arm.")] = "treat",
        control: Annotated[str, typer.Option("--control", help="The control arm.")] = "control",
        planned: Annotated[
            int, typer.Option("--planned", min=2, help="Outcomes the sequence is tuned for.")
        ] = 1_000,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Per-arm outcome rates and the effect, with a fixed-horizon interval and a sequential
        one (valid however often it is looked at)."""
        from churnscale.evaluation.experiment import report as build
        from churnscale.terminal import stdout_console

        found = build(log, treat=treat, control=control, planned=planned).to_dict()
        if as_json:
            sys.stdout.write(json.dumps(found, indent=2) + "\n")
            return
        out = stdout_console()
        out.print(f"{found['assignments']:,} assignments, {found['outcomes']:,} with an outcome")
        for arm, figures in found["arms"].items():
            out.print(f"  {arm}: {figures['rows']:,.0f} outcomes, rate {figures['rate']:.4f}")
        fixed, seq = found["fixed_horizon"], found["sequential"]
        out.print(
            f"{treat} − {control} (randomized rows): {fixed['difference']:+.4f} "
            f"[{fixed['interval'][0]:+.4f}, {fixed['interval'][1]:+.4f}] fixed horizon"
        )
        out.print(
            f"{treat} − {control} (every row, inverse propensity): {seq['estimate']:+.4f} "
            f"[{seq['interval'][0]:+.4f}, {seq['interval'][1]:+.4f}] sequential"
        )

    @group.command("export")
    def export(
        log: LogArg,
        out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
        outcome: Annotated[
            str, typer.Option("--outcome-col", help="Name of the outcome column.")
        ] = "churned",
        treatment_col: Annotated[
            str, typer.Option("--treatment-col", help="Name of the arm column.")
        ] = "arm",
    ) -> None:
        """Write the randomized log as an uplift training set: the features as served, the arm,
        the outcome and the logged propensity."""
        import pyarrow.parquet as pq

        from churnscale.artifacts import replaced_on_success
        from churnscale.evaluation.experiment import training_table
        from churnscale.terminal import stderr_console

        table = training_table(log, treatment_col=treatment_col, outcome=outcome)
        with replaced_on_success(out) as partial:
            pq.write_table(table, partial)
        stderr_console().print(f"wrote {table.num_rows:,} rows to {out}")
