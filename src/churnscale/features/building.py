"""``churnscale.features.build``: point-in-time training rows from an event log, as
``churnscale features build`` makes them (the command is this function with flags)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from churnscale.features.builder import BUCKET_ROWS, build_features
from churnscale.features.columns import AMOUNT, ID, TIME, TYPE, EventColumns
from churnscale.features.sources import BuildSources
from churnscale.features.spec import feature_spec, parse_dates, parse_duration, parse_durations

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.data.store import DatasetInfo


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return value.split(",") if isinstance(value, str) else list(value)


def _dates(value: str | date | Sequence[str | date]) -> tuple[date, ...]:
    if isinstance(value, date):
        return (value,)
    if isinstance(value, str):
        return parse_dates(value, flag="as_of")
    text = ",".join(d.isoformat() if isinstance(d, date) else d for d in value)
    return parse_dates(text, flag="as_of")


def _days(value: str | int | Sequence[str | int], *, flag: str) -> tuple[int, ...]:
    if isinstance(value, int):
        value = f"{value}d"
    if isinstance(value, str):
        return parse_durations(value, flag=flag)
    return parse_durations(",".join(f"{v}d" if isinstance(v, int) else v for v in value), flag=flag)


def build(
    events: str | os.PathLike[str],
    *,
    as_of: str | date | Sequence[str | date],
    out: str | os.PathLike[str],
    horizon: str | int = "90d",
    windows: str | Sequence[str | int] = "7d,30d,90d",
    label: str | None = None,
    static: str | os.PathLike[str] | None = None,
    static_time: str | None = None,
    types: str | Sequence[str] | None = None,
    amount_types: str | Sequence[str] | None = None,
    cancel_type: str | None = None,
    customer_col: str = ID,
    time_col: str = TIME,
    time_format: str | None = None,
    type_col: str | None = None,
    event_type: str | None = None,
    amount_col: str = AMOUNT,
    bucket_rows: int = BUCKET_ROWS,
    survival: bool = False,
    settings: Settings | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DatasetInfo:
    """One row per customer per ``as_of`` date into a stored dataset at ``out``; no feature
    uses an event at or after its date, the label looks ``horizon`` ahead.

    ``events``: an event log (file, directory or glob); its columns are ``customer_id``,
    ``timestamp``, ``event_type`` and ``amount`` unless mapped: ``customer_col``, ``time_col``
    (``time_format``, a strptime format such as ``"%Y%m%d"``, for times that are not ISO
    8601), ``type_col`` or one constant ``event_type`` for a log of one kind of event, and
    ``amount_col``. The mapping is kept in the dataset's FeatureSpec, so the service reads
    events the same way. Unset ``types``, ``amount_types``, ``cancel_type`` and ``label``
    follow the log (see :func:`~churnscale.features.spec.feature_spec`). ``static`` adds
    customer attributes (as of each date with ``static_time``). Durations are ``"90d"``,
    ``"13w"`` or days; dates ISO strings or :class:`datetime.date`; lists a comma-separated
    string or a sequence. ``survival`` writes ``duration_days`` (days from the as-of date to
    churn, or to the log's last event) and ``event`` (1: churned, 0: censored; the target)
    instead of the binary ``churned`` label, for ``churnscale train --duration-col
    duration_days --event-col event`` (see :mod:`churnscale.features.durations`).

    >>> import churnscale
    >>> made = churnscale.generate(home / "c.parquet", rows=300, events=home / "e.parquet")
    >>> info = churnscale.features.build(
    ...     made.events, as_of=["2026-03-31", "2026-06-30"], horizon=90, out=home / "pit"
    ... )
    >>> info.rows > 300
    True
    """
    from churnscale.config import load_settings

    columns = EventColumns(
        customer_col=customer_col,
        time_col=time_col,
        time_format=time_format,
        type_col=type_col if type_col is not None else TYPE,
        event_type=event_type,
        amount_col=amount_col,
    )
    spec = feature_spec(
        columns=columns,
        windows=_days(windows, flag="windows"),
        event_types=_names(types),
        amount_types=_names(amount_types),
        cancel_type=cancel_type,
        horizon=parse_duration(
            f"{horizon}d" if isinstance(horizon, int) else horizon, flag="horizon"
        ),
        label=label,
    )
    settings = settings or load_settings()
    sources = BuildSources(
        os.fspath(events),
        os.fspath(static) if static is not None else None,
        static_time,
        storage_options=settings.storage_options(),
    )
    _, info = build_features(
        sources,
        Path(out),
        as_of=_dates(as_of),
        spec=spec,
        bucket_rows=bucket_rows,
        survival=survival,
        on_progress=on_progress,
    )
    return info
