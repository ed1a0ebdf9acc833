"""``churnscale features build``: point-in-time training rows from an event log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

features_app = typer.Typer(help="Build features from event logs.", no_args_is_help=True)


@features_app.command("build")
def build(
    events: Annotated[str, typer.Option("--events", help="Event log: file, directory or glob.")],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date(s): YYYY-MM-DD[,…].")],
    out: Annotated[Path, typer.Option("--out", help="Dataset directory to create.")],
    horizon: Annotated[str, typer.Option("--horizon", help="Label horizon, e.g. 90d.")] = "90d",
    windows: Annotated[str, typer.Option("--windows", help="Feature windows.")] = "7d,30d,90d",
    label: Annotated[str, typer.Option("--label", help="cancel or inactivity.")] = "cancel",
    static: Annotated[
        str | None, typer.Option("--static", help="Static customer attributes to join.")
    ] = None,
    static_time: Annotated[
        str | None, typer.Option("--static-time", help="Date column of --static rows.")
    ] = None,
    types: Annotated[
        str | None,
        typer.Option(
            "--types",
            help="Event types, comma-separated [default: the six of the generated event log: "
            "login, usage, payment, support_ticket, plan_change, cancel].",
        ),
    ] = None,
    amount_types: Annotated[
        str, typer.Option("--amount-types", help="Event types whose amounts are summed.")
    ] = "payment,usage",
    cancel_type: Annotated[
        str, typer.Option("--cancel-type", help="Event type that means cancellation ('' if none).")
    ] = "cancel",
    bucket_rows: Annotated[
        int,
        typer.Option("--bucket-rows", min=1, help="Events per on-disk bucket (bounds memory)."),
    ] = 4_000_000,
) -> None:
    """One row per customer per as-of date; no feature uses an event at or after the date."""
    from churnscale.config import load_settings
    from churnscale.features.builder import build_features
    from churnscale.features.sources import BuildSources
    from churnscale.features.spec import (
        DEFAULT_EVENT_TYPES,
        FeatureSpec,
        parse_dates,
        parse_duration,
        parse_durations,
    )
    from churnscale.progress import row_progress
    from churnscale.terminal import stderr_console

    listed = DEFAULT_EVENT_TYPES if types is None else types.split(",")
    spec = FeatureSpec(
        windows=parse_durations(windows, flag="--windows"),
        event_types=tuple(t.strip() for t in listed if t.strip()),
        amount_types=tuple(t.strip() for t in amount_types.split(",") if t.strip()),
        cancel_type=cancel_type or None,
        horizon=parse_duration(horizon, flag="--horizon"),
        label=label,
    )
    dates = parse_dates(as_of, flag="--as-of")
    sources = BuildSources(
        events, static, static_time, storage_options=load_settings().storage_options()
    )
    with row_progress("events") as advance:
        _, info = build_features(
            sources, out, as_of=dates, spec=spec, bucket_rows=bucket_rows, on_progress=advance
        )
    stderr_console().print(
        f"built {info.rows:,} rows from {info.extra['events']:,} events at {len(dates)} "
        f"as-of date(s) into {out}; label rate {info.extra['positive_rate']:.4f} "
        f"(fingerprint {info.fingerprint})"
    )


def register(app: typer.Typer) -> None:
    """Attach ``churnscale features``."""
    app.add_typer(features_app, name="features")
