"""Flags shared by several commands: the schema hints given to ``ingest``, ``train`` and others."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from churnscale.data.schema import Schema, SchemaHints

TargetOpt = Annotated[str | None, typer.Option("--target", help="Target (label) column.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Customer id column.")]
PositiveOpt = Annotated[
    str | None, typer.Option("--positive-label", help="Target value that means churn.")
]
DropOpt = Annotated[list[str] | None, typer.Option("--drop", help="Column to ignore (repeat).")]
SchemaOpt = Annotated[Path | None, typer.Option("--schema", help="Schema file (YAML or JSON).")]
TimeOpt = Annotated[str | None, typer.Option("--time-col", help="Date column for time splits.")]


def schema_inputs(
    *,
    target: str | None,
    id_column: str | None,
    positive_label: str | None,
    drop: list[str] | None,
    schema_file: Path | None,
    time_column: str | None = None,
) -> tuple[SchemaHints, Schema | None]:
    """Hints from flags, or a full schema from a file (flags then refine it)."""
    from churnscale.data.schema import Schema, SchemaHints

    if schema_file is not None:
        return SchemaHints(), Schema.load(schema_file)
    hints = SchemaHints(
        target=target,
        id=id_column,
        positive_label=positive_label,
        drop=tuple(drop or ()),
        time_column=time_column,
    )
    return hints, None
