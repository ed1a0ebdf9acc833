"""``churnscale score``: batch scoring of any source into Parquet, here or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach ``score`` to the CLI."""

    @app.command()
    def score(
        data: Annotated[str, typer.Argument(help="Dataset directory, file, glob or s3:// path.")],
        model: Annotated[
            str, typer.Option("--model", help="Bundle path or registry reference (churn@champion).")
        ],
        out: Annotated[
            Path, typer.Option("--out", help="Parquet file to write (a directory with --cluster).")
        ],
        reasons: Annotated[bool, typer.Option("--reasons", help="Add top-3 reasons.")] = False,
        value_column: Annotated[
            str | None,
            typer.Option(
                "--value-col",
                help="Numeric column of DATA with each customer's value: adds value and "
                "expected_loss = P(churn) x value (per horizon for a survival model).",
            ),
        ] = None,
        rank: Annotated[
            bool,
            typer.Option(
                "--rank",
                help="Write rows by expected loss (churn probability without --value-col), "
                "highest first, with a rank column.",
            ),
        ] = False,
        cluster: Annotated[
            str | None,
            typer.Option(
                "--cluster",
                help="Score row groups on Dask: local:N or tcp://HOST:8786 (Parquet sources).",
            ),
        ] = None,
    ) -> None:
        """Score every customer of DATA: id, churn probability, decile (1 = most at risk)."""
        from churnscale.api import score as score_data
        from churnscale.config import load_settings
        from churnscale.progress import row_progress
        from churnscale.terminal import stderr_console

        if cluster is not None:
            from churnscale.extras import require

            require("dask", feature="score --cluster")
        settings = load_settings()
        with row_progress("score") as advance:
            info = score_data(
                data,
                model,
                out,
                reasons=reasons,
                value=value_column,
                rank=rank,
                cluster=cluster,
                settings=settings,
                on_progress=advance,
            )
        console = stderr_console()
        console.print(f"scored {info.rows:,} rows into {out}; {info.rejected:,} row(s) quarantined")
        if info.quarantine is not None:
            console.print(f"quarantine: {info.quarantine}")
