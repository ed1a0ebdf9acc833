"""What point-in-time features to build from an event log: windows, event types, horizon, label.

A :class:`FeatureSpec` fixes the feature list, so the columns never depend on which events a
log happens to hold; it is saved in the dataset's schema metadata so that the service can
rebuild the same features for one customer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from churnscale.exceptions import ConfigError
from churnscale.features.columns import EventColumns

#: Event types of :mod:`churnscale.data.events`, the default vocabulary.
DEFAULT_EVENT_TYPES = ("login", "usage", "payment", "support_ticket", "plan_change", "cancel")
LABELS = ("cancel", "inactivity")
DAY_US = 86_400_000_000
_DURATION = re.compile(r"^\s*(\d+)\s*([dw])\s*$")


def parse_duration(text: str, *, flag: str) -> int:
    """Days in a duration such as ``90d`` or ``39w``; ``flag`` names the option in errors."""
    match = _DURATION.match(text)
    days = int(match.group(1)) * (7 if match.group(2) == "w" else 1) if match else 0
    if days <= 0:
        raise ConfigError(flag, expected="a positive duration like 90d or 13w", received=text)
    return days


def parse_durations(text: str, *, flag: str) -> tuple[int, ...]:
    """Days of comma-separated durations (``7d,30d,90d``), sorted and without repeats."""
    return tuple(sorted({parse_duration(part, flag=flag) for part in text.split(",")}))


def parse_dates(text: str, *, flag: str) -> tuple[date, ...]:
    """Sorted distinct dates from comma-separated ``YYYY-MM-DD`` values."""
    try:
        days = {date.fromisoformat(part.strip()) for part in text.split(",")}
    except ValueError:
        raise ConfigError(
            flag, expected="dates as YYYY-MM-DD, comma-separated", received=text
        ) from None
    return tuple(sorted(days))


def date_us(day: date) -> int:
    """Microseconds since the epoch at the start (00:00) of ``day``."""
    return int(np.datetime64(day, "D").astype(np.int64)) * DAY_US


@dataclass(frozen=True)
class FeatureSpec:
    """The feature and label definition: windows in days, event vocabulary, horizon, label,
    and the event log's :class:`EventColumns`."""

    windows: tuple[int, ...] = (7, 30, 90)
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    amount_types: tuple[str, ...] = ("payment", "usage")
    cancel_type: str | None = "cancel"
    horizon: int = 90
    label: str = "cancel"
    columns: EventColumns = field(default_factory=EventColumns)

    def __post_init__(self) -> None:
        if not self.windows or any(w <= 0 for w in self.windows):
            raise ConfigError("--windows", expected="positive durations", received=self.windows)
        if len(set(self.event_types)) != len(self.event_types) or not self.event_types:
            raise ConfigError("--types", expected="distinct event types", received=self.event_types)
        unknown = [t for t in (*self.amount_types, self.cancel_type) if t is not None]
        if any(t not in self.event_types for t in unknown):
            raise ConfigError(
                "amount_types/cancel_type", expected=f"some of {self.event_types}", received=unknown
            )
        if self.horizon <= 0:
            raise ConfigError(
                "--horizon", expected="a positive number of days", received=self.horizon
            )
        if self.label not in LABELS:
            raise ConfigError("--label", expected=" or ".join(LABELS), received=self.label)
        constant = self.columns.event_type
        if constant is not None and constant not in self.event_types:
            raise ConfigError(
                "--event-type", expected=f"one of {self.event_types}", received=constant
            )
        if self.label == "cancel" and self.cancel_type is None:
            raise ConfigError(
                "--label",
                expected="inactivity when there is no cancel event type",
                received=self.label,
            )

    @property
    def activity_types(self) -> tuple[str, ...]:
        """Event types that get their own count and recency features (all but the cancel)."""
        return tuple(t for t in self.event_types if t != self.cancel_type)

    def feature_names(self) -> list[str]:
        """Every feature column, in the order the builder writes them."""
        names = ["tenure_days", "recency_days"]
        names += [f"recency_days_{t}" for t in self.activity_types]
        names += ["gap_mean_days", "gap_std_days", "gap_max_days", "count_total"]
        names += ["active_days_total"]
        for a in self.amount_types:
            names += [f"amount_total_{a}", f"amount_mean_{a}"]
        for w in self.windows:
            names += [f"count_{w}d", f"count_trend_{w}d", f"active_days_{w}d"]
            names += [f"count_{t}_{w}d" for t in self.activity_types]
            for a in self.amount_types:
                names += [f"amount_{a}_{w}d", f"amount_trend_{a}_{w}d"]
        return names

    def monotone_directions(self) -> dict[str, int]:
        """Features whose effect on churn risk has a known sign: +1 raises it, -1 lowers it.

        Days since the last activity (overall, and per amount-bearing type) raise the risk;
        activity counts and active days (all types together, overall and per window), and the
        counts and amounts of amount-bearing types (payments, purchases, usage) lower it. Under
        the inactivity label this holds by construction; under the cancel label it is the
        usual domain prior. Other features (tenure, gaps, trends, means, per-type counts such
        as support tickets whose sign depends on the business) are left free.
        """
        valued = [a for a in self.amount_types if a in self.activity_types]
        directions = {"recency_days": 1, "count_total": -1, "active_days_total": -1}
        directions |= {f"recency_days_{a}": 1 for a in valued}
        directions |= {f"amount_total_{a}": -1 for a in valued}
        for w in self.windows:
            directions |= {f"count_{w}d": -1, f"active_days_{w}d": -1}
            directions |= {f"count_{a}_{w}d": -1 for a in valued}
            directions |= {f"amount_{a}_{w}d": -1 for a in valued}
        return directions

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists; the columns only when not the default)."""
        data: dict[str, Any] = {
            "windows": list(self.windows),
            "event_types": list(self.event_types),
            "amount_types": list(self.amount_types),
            "cancel_type": self.cancel_type,
            "horizon": self.horizon,
            "label": self.label,
        }
        if not self.columns.is_default:
            data["columns"] = self.columns.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """The inverse of :meth:`to_dict`."""
        return cls(
            windows=tuple(int(w) for w in data["windows"]),
            event_types=tuple(data["event_types"]),
            amount_types=tuple(data["amount_types"]),
            cancel_type=data.get("cancel_type"),
            horizon=int(data["horizon"]),
            label=str(data["label"]),
            columns=EventColumns.from_dict(data.get("columns") or {}),
        )


def feature_spec(
    *,
    columns: EventColumns | None = None,
    windows: tuple[int, ...] = (7, 30, 90),
    event_types: Sequence[str] | None = None,
    amount_types: Sequence[str] | None = None,
    cancel_type: str | None = None,
    horizon: int = 90,
    label: str | None = None,
) -> FeatureSpec:
    """A :class:`FeatureSpec` for a log read by ``columns``, its unset parts following the log.

    Unset (None): the event types are the generated log's six, or the one constant
    ``columns.event_type``; the amount types ``payment`` and ``usage``, or that constant type;
    the cancel type ``cancel`` when it is one of the types (``""``: none); the label ``cancel``
    when there is a cancel type, else ``inactivity``.

    >>> spec = feature_spec(columns=EventColumns(time_col="date", time_format="%Y%m%d",
    ...                     event_type="purchase", amount_col="dollar_value"))
    >>> spec.event_types, spec.amount_types, spec.cancel_type, spec.label
    (('purchase',), ('purchase',), None, 'inactivity')
    """
    columns = columns or EventColumns()
    constant = columns.event_type
    if event_types is None:
        event_types = DEFAULT_EVENT_TYPES if constant is None else (constant,)
    if amount_types is None:
        amount_types = ("payment", "usage") if constant is None else (constant,)
    if cancel_type is None:
        cancel_type = "cancel" if "cancel" in event_types else ""
    return FeatureSpec(
        windows=windows,
        event_types=tuple(t.strip() for t in event_types if t.strip()),
        amount_types=tuple(t.strip() for t in amount_types if t.strip()),
        cancel_type=cancel_type or None,
        horizon=horizon,
        label=label or ("cancel" if cancel_type else "inactivity"),
        columns=columns,
    )


def monotone_constraints(metadata: dict[str, Any], names: list[str]) -> list[int] | None:
    """LightGBM's ``monotone_constraints`` for model inputs ``names`` of a dataset whose schema
    ``metadata`` holds a feature spec (a point-in-time dataset); None for any other dataset."""
    if "feature_spec" not in metadata:
        return None
    directions = FeatureSpec.from_dict(metadata["feature_spec"]).monotone_directions()
    constraints = [directions.get(n, 0) for n in names]
    return constraints if any(constraints) else None
