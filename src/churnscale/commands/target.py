"""``churnscale target``: whom to treat, from an uplift model, under a budget or a cost limit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach ``target``."""

    @app.command()
    def target(
        data: Annotated[str, typer.Argument(help="Customers: dataset, file, glob or s3:// path.")],
        model: Annotated[str, typer.Option("--model", help="Uplift model: bundle or reference.")],
        out: Annotated[Path, typer.Option("--out", help="Parquet file of the chosen customers.")],
        budget: Annotated[
            int | None, typer.Option("--budget", min=0, help="Most customers to treat.")
        ] = None,
        max_cost: Annotated[
            float | None,
            typer.Option(
                "--max-cost", min=0.0, help="Most to spend (CHURNSCALE_UPLIFT_ACTION_COST each)."
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the totals as JSON.")] = False,
    ) -> None:
        """Pick the customers whose treatment is worth the most (uplift × the outcome's value −
        the action's cost, CHURNSCALE_UPLIFT_*), best first, within --budget or --max-cost."""
        from churnscale.config import load_settings
        from churnscale.model.loading import expect_model, load_model
        from churnscale.model.uplift import UpliftModel
        from churnscale.scoring.uplift import target as choose
        from churnscale.terminal import stdout_console

        settings = load_settings()
        uplift = expect_model(
            load_model(model, settings), UpliftModel, reference=model, purpose="targeting"
        )
        totals = choose(data, uplift, out, settings=settings, budget=budget, max_cost=max_cost)
        if as_json:
            sys.stdout.write(json.dumps(totals, indent=2) + "\n")
            return
        stdout_console().print(
            f"treat {totals['treated']:,.0f} of {totals['customers']:,.0f} customers: "
            f"{totals['incremental_outcomes']:,.1f} incremental outcomes expected, value "
            f"{totals['expected_value']:,.2f} after {totals['cost']:,.2f} of cost; list: {out}"
        )
