"""``churnscale export``: a model in a portable or compact form, written with its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FORMAT_HELP = (
    "onnx (LightGBM or MLP), or for an MLP: onnx-int8, fp16, int8, pruned[:S] (S in (0, 1))."
)


def register(app: typer.Typer) -> None:
    """Attach ``export`` to the CLI."""

    @app.command()
    def export(
        model: Annotated[
            str, typer.Argument(help="Bundle directory or registry reference (NAME@ALIAS).")
        ],
        fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)],
        out: Annotated[Path, typer.Option("--out", help="Directory to create.")],
    ) -> None:
        """Export MODEL (checked against it on probe rows) to a new directory with a manifest."""
        from churnscale.extras import require

        if fmt.startswith("onnx"):
            require("export", feature=f"export --format {fmt}")
        from churnscale.config import load_settings
        from churnscale.export.writer import export_model
        from churnscale.model.loading import load_bundle
        from churnscale.registry.mlflow_registry import Registry
        from churnscale.terminal import stderr_console

        bundle = Registry(load_settings()).resolve(model)
        report = export_model(load_bundle(bundle), fmt, out)
        stderr_console().print(
            f"wrote {report.format} to {out} ({report.bytes:,} bytes); "
            f"max |Δp| {report.max_abs_diff:.2e} on {report.rows_checked:,} probe rows"
        )
