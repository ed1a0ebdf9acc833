"""Point-in-time features of customers from their events, using only events before the as-of date.

:func:`features_at` is the one kernel: the batch builder runs it on a bucket of many customers,
:func:`churnscale.features.customer.features_for_customer` on one customer's events, so the two
always agree to the bit.
Events are put in a canonical order (customer, time, type, amount) and cut to those strictly
before the as-of instant; every feature is a reduction over each customer's segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from churnscale.features.spec import DAY_US, FeatureSpec, date_us

_NEVER = np.iinfo(np.int64).min


@dataclass(frozen=True)
class EventArrays:
    """Events as parallel arrays: customer code, time (µs since the epoch), type code, amount."""

    code: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    amount: np.ndarray

    def take(self, index: np.ndarray) -> EventArrays:
        """The events at ``index`` (a boolean mask or positions)."""
        return EventArrays(self.code[index], self.time[index], self.kind[index], self.amount[index])

    def canonical(self) -> EventArrays:
        """These events in canonical order: by customer, time, type, then amount."""
        return self.take(_canonical_order(self))

    def before(self, instant_us: int) -> EventArrays:
        """The events strictly before ``instant_us`` (order kept)."""
        return self.take(self.time < instant_us)

    def __len__(self) -> int:
        return len(self.time)


def _canonical_order(ev: EventArrays) -> np.ndarray:
    """Positions that sort ``ev`` by (code, time, kind, amount).

    One int64 key (code, time) is sorted when it fits, which is instant for a log already
    grouped by customer and time; only runs of equal keys are then sorted by kind and amount.
    """
    if len(ev) == 0:
        return np.arange(0)
    first, span = int(ev.time.min()), int(ev.time.max()) - int(ev.time.min()) + 1
    if (int(ev.code.max()) + 1) * span >= 2**62:
        return np.lexsort((ev.amount, ev.kind, ev.time, ev.code))
    key = ev.code.astype(np.int64) * span + (ev.time - first)
    step = np.diff(key)
    order = np.arange(len(key)) if bool((step >= 0).all()) else np.argsort(key)
    ordered = key[order]
    tied = np.zeros(len(key), dtype=bool)
    same = ordered[1:] == ordered[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    at = np.flatnonzero(tied)
    if len(at):
        sub = order[at]
        order[at] = sub[np.lexsort((ev.amount[sub], ev.kind[sub], key[sub]))]
    return order


@dataclass(frozen=True)
class _Segments:
    starts: np.ndarray
    ends: np.ndarray
    count: np.ndarray
    owner: np.ndarray  # segment number of each event

    @classmethod
    def of(cls, code: np.ndarray) -> _Segments:
        bounds = np.flatnonzero(code[1:] != code[:-1]) + 1
        starts = np.concatenate([[0], bounds]).astype(np.int64)
        ends = np.concatenate([bounds, [len(code)]]).astype(np.int64)
        count = ends - starts
        return cls(starts, ends, count, np.repeat(np.arange(len(starts)), count))

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _recency(ev: EventArrays, seg: _Segments, as_of: int, spec: FeatureSpec) -> dict[str, Any]:
    out = {
        "tenure_days": (as_of - ev.time[seg.starts]) / DAY_US,
        "recency_days": (as_of - ev.time[seg.ends - 1]) / DAY_US,
    }
    for j, name in enumerate(spec.event_types):
        if name in spec.activity_types:
            last = np.maximum.reduceat(np.where(ev.kind == j, ev.time, _NEVER), seg.starts)
            known = last != _NEVER
            days = (as_of - np.where(known, last, as_of)) / DAY_US
            out[f"recency_days_{name}"] = np.where(known, days, np.nan)
    return out


def _gaps(ev: EventArrays, seg: _Segments) -> dict[str, Any]:
    first = np.zeros(len(ev), dtype=bool)
    first[seg.starts] = True
    gap = np.zeros(len(ev))
    gap[1:] = (ev.time[1:] - ev.time[:-1]) / DAY_US
    gap[first] = 0.0
    pairs = seg.count - 1
    mean = _ratio((ev.time[seg.ends - 1] - ev.time[seg.starts]) / DAY_US, pairs)
    deviation = np.where(first, 0.0, gap - mean[seg.owner])
    spread = np.sqrt(_ratio(seg.sum(deviation * deviation), pairs))
    largest = np.maximum.reduceat(np.where(first, -1.0, gap), seg.starts)
    return {
        "gap_mean_days": mean,
        "gap_std_days": spread,
        "gap_max_days": np.where(pairs > 0, largest, np.nan),
        "count_total": seg.count.astype(np.float64),
    }


def _active_days(ev: EventArrays, seg: _Segments, as_of: int, spec: FeatureSpec) -> dict[str, Any]:
    """Distinct calendar days with an event, overall and per window."""
    day = ev.time // DAY_US
    fresh = np.ones(len(ev), dtype=bool)
    fresh[1:] = day[1:] != day[:-1]
    fresh[seg.starts] = True
    out = {"active_days_total": seg.sum(fresh.astype(np.int64)).astype(np.float64)}
    for w in spec.windows:
        recent = fresh & (ev.time >= as_of - w * DAY_US)
        out[f"active_days_{w}d"] = seg.sum(recent.astype(np.int64)).astype(np.float64)
    return out


def _trend(last: np.ndarray, previous: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.log1p(np.maximum(last, 0.0)) - np.log1p(np.maximum(previous, 0.0))
    return result


def _windows(ev: EventArrays, seg: _Segments, as_of: int, spec: FeatureSpec) -> dict[str, Any]:
    amounts = np.nan_to_num(ev.amount, nan=0.0)
    typed = {
        a: np.where(ev.kind == spec.event_types.index(a), amounts, 0.0) for a in spec.amount_types
    }
    out: dict[str, Any] = {}
    for a, values in typed.items():
        count = seg.sum((ev.kind == spec.event_types.index(a)).astype(np.int64))
        out[f"amount_total_{a}"] = seg.sum(values)
        out[f"amount_mean_{a}"] = _ratio(out[f"amount_total_{a}"], count)
    for w in spec.windows:
        last = ev.time >= as_of - w * DAY_US
        previous = (ev.time >= as_of - 2 * w * DAY_US) & ~last
        recent = seg.sum(last.astype(np.int64)).astype(np.float64)
        out[f"count_{w}d"] = recent
        out[f"count_trend_{w}d"] = _trend(recent, seg.sum(previous.astype(np.int64)))
        for name in spec.activity_types:
            hits = last & (ev.kind == spec.event_types.index(name))
            out[f"count_{name}_{w}d"] = seg.sum(hits.astype(np.int64)).astype(np.float64)
        for a, values in typed.items():
            out[f"amount_{a}_{w}d"] = seg.sum(np.where(last, values, 0.0))
            before = seg.sum(np.where(previous, values, 0.0))
            out[f"amount_trend_{a}_{w}d"] = _trend(out[f"amount_{a}_{w}d"], before)
    return out


def features_at(
    events: EventArrays, as_of_us: int, spec: FeatureSpec
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Customer codes and their features at ``as_of_us`` from events cut by :meth:`before`.

    ``events`` must hold only events strictly before ``as_of_us``, in canonical order.
    """
    names = spec.feature_names()
    if len(events) == 0:
        return np.empty(0, dtype=np.int64), {n: np.empty(0) for n in names}
    seg = _Segments.of(events.code)
    found = {
        **_recency(events, seg, as_of_us, spec),
        **_gaps(events, seg),
        **_active_days(events, seg, as_of_us, spec),
        **_windows(events, seg, as_of_us, spec),
    }
    return events.code[seg.starts], {n: np.asarray(found[n], dtype=np.float64) for n in names}


def instant_us(as_of: date | datetime | str) -> int:
    """Microseconds since the epoch of an as-of date (its midnight) or timestamp."""
    if isinstance(as_of, str):
        as_of = datetime.fromisoformat(as_of)
    if isinstance(as_of, datetime):
        return int(np.datetime64(as_of.replace(tzinfo=None), "us").astype(np.int64))
    return date_us(as_of)
