"""``churnscale.features.build``: point-in-time training rows from an event log, as
``churnscale features build`` makes them (the command is this function with flags)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from churnscale.features.builder import BUCKET_ROWS, build_features
from churnscale.features.sources import BuildSources
from churnscale.features.spec import (
    DEFAULT_EVENT_TYPES,
    FeatureSpec,
    parse_dates,
    parse_duration,
    parse_durations,
)

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.data.store import DatasetInfo


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p.strip())


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
    label: str = "cancel",
    static: str | os.PathLike[str] | None = None,
    static_time: str | None = None,
    types: str | Sequence[str] | None = None,
    amount_types: str | Sequence[str] = ("payment", "usage"),
    cancel_type: str | None = "cancel",
    bucket_rows: int = BUCKET_ROWS,
    settings: Settings | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DatasetInfo:
    """One row per customer per ``as_of`` date into a stored dataset at ``out``; no feature
    uses an event at or after its date, the label looks ``horizon`` ahead.

    ``events``: an event log (file, directory or glob) of ``customer_id``, ``timestamp``,
    ``event_type`` and ``amount``; ``static`` adds customer attributes (as of each date with
    ``static_time``). Durations are ``"90d"``/``"13w"`` or days; dates ISO strings or
    :class:`datetime.date`; lists a comma-separated string or a sequence.

    >>> import churnscale
    >>> made = churnscale.generate(home / "c.parquet", rows=300, events=home / "e.parquet")
    >>> info = churnscale.features.build(
    ...     made.events, as_of=["2026-03-31", "2026-06-30"], horizon=90, out=home / "pit"
    ... )
    >>> info.rows > 300
    True
    """
    from churnscale.config import load_settings

    spec = FeatureSpec(
        windows=_days(windows, flag="windows"),
        event_types=_names(DEFAULT_EVENT_TYPES if types is None else types),
        amount_types=_names(amount_types),
        cancel_type=cancel_type or None,
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
        on_progress=on_progress,
    )
    return info
