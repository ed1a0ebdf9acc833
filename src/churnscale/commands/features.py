"""``churnscale features build``: point-in-time training rows from an event log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnscale.commands.options import as_flags

features_app = typer.Typer(help="Build features from event logs.", no_args_is_help=True)


@features_app.command("build")
def build(
    events: Annotated[str, typer.Option("--events", help="Event log: file, directory or glob.")],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date(s): YYYY-MM-DD[,…].")],
    out: Annotated[Path, typer.Option("--out", help="Dataset directory to create.")],
    horizon: Annotated[str, typer.Option("--horizon", help="Label horizon, e.g. 90d.")] = "90d",
    windows: Annotated[str, typer.Option("--windows", help="Feature windows.")] = "7d,30d,90d",
    label: Annotated[
        str | None,
        typer.Option(
            "--label", help="cancel or inactivity (default: cancel if there is a cancel type)."
        ),
    ] = None,
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
            help="Event types, comma-separated (default: the --event-type, else the six of the "
            "generated event log: login, usage, payment, support_ticket, plan_change, cancel).",
        ),
    ] = None,
    amount_types: Annotated[
        str | None,
        typer.Option(
            "--amount-types",
            help="Event types whose amounts are summed (default: the --event-type, else "
            "payment,usage).",
        ),
    ] = None,
    cancel_type: Annotated[
        str | None,
        typer.Option(
            "--cancel-type",
            help="Event type that means cancellation ('' if none) (default: cancel if listed).",
        ),
    ] = None,
    customer_col: Annotated[
        str, typer.Option("--customer-col", help="Column of customer ids.")
    ] = "customer_id",
    time_col: Annotated[str, typer.Option("--time-col", help="Column of event times.")] = (
        "timestamp"
    ),
    time_format: Annotated[
        str | None,
        typer.Option(
            "--time-format", help="strptime format of the times, e.g. %Y%m%d (default: ISO 8601)."
        ),
    ] = None,
    type_col: Annotated[
        str | None,
        typer.Option("--type-col", help="Column of event types (default: event_type)."),
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option("--event-type", help="One type for every event (instead of --type-col)."),
    ] = None,
    amount_col: Annotated[
        str, typer.Option("--amount-col", help="Column of amounts (optional if 'amount').")
    ] = "amount",
    bucket_rows: Annotated[
        int,
        typer.Option("--bucket-rows", min=1, help="Events per on-disk bucket (bounds memory)."),
    ] = 4_000_000,
    survival: Annotated[
        bool,
        typer.Option(
            "--survival",
            help="Survival labels instead of the binary 'churned': duration_days (days from the "
            "as-of date to the cancel event, or to the day the customer has gone --horizon days "
            "without activity under --label inactivity; else to the log's last event) and "
            "event (1 churned, 0 censored at the log's end). Train with churnscale train DIR "
            "--duration-col duration_days --event-col event.",
        ),
    ] = False,
) -> None:
    """One row per customer per as-of date; no feature uses an event at or after the date."""
    from churnscale.features import build as build_dataset
    from churnscale.progress import row_progress
    from churnscale.terminal import stderr_console

    with as_flags(), row_progress("events") as advance:
        info = build_dataset(
            events,
            as_of=as_of,
            out=out,
            horizon=horizon,
            windows=windows,
            label=label,
            static=static,
            static_time=static_time,
            types=types,
            amount_types=amount_types,
            cancel_type=cancel_type,
            customer_col=customer_col,
            time_col=time_col,
            time_format=time_format,
            type_col=type_col,
            event_type=event_type,
            amount_col=amount_col,
            bucket_rows=bucket_rows,
            survival=survival,
            on_progress=advance,
        )
    rate = "event" if survival else "label"
    stderr_console().print(
        f"built {info.rows:,} rows from {info.extra['events']:,} events at "
        f"{len(info.extra['as_of'])} as-of date(s) into {out}; {rate} rate "
        f"{info.extra['positive_rate']:.4f} (fingerprint {info.fingerprint})"
    )


def register(app: typer.Typer) -> None:
    """Attach ``churnscale features``."""
    app.add_typer(features_app, name="features")
