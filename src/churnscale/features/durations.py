"""Survival labels of point-in-time rows: days from the as-of date to churn, and whether the
churn was observed before the event log's end (``features build --survival``).

Churn is the binary label's event, so the two agree: under ``label="cancel"`` it is the first
cancel event at or after the as-of date (``churned`` = ``event`` and ``duration < horizon``);
under ``label="inactivity"`` it is the instant the customer has gone ``horizon`` days without
an activity (an event other than the cancel) counted from the as-of date or from their last
activity after it, whichever is later (``churned`` = ``event`` and ``duration <= horizon``,
event durations being at least the horizon: the inactivity itself started ``duration -
horizon`` days after the as-of date). A customer with no churn by the log's last event is
censored there: ``event`` 0 and ``duration`` the days from the as-of date to that end.
Like the binary label these look only at events at or after the as-of date, and are targets,
never features.
"""

from __future__ import annotations

import numpy as np

from churnscale.features.pointintime import EventArrays
from churnscale.features.spec import DAY_US, FeatureSpec

DURATION, EVENT = "duration_days", "event"
_NEVER = np.iinfo(np.int64).max


def _first_per_code(code: np.ndarray, time: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """For each of ``codes``, the first ``time`` of its run in ``code`` (grouped, in time order);
    :data:`_NEVER` for codes without one."""
    found, first = np.unique(code, return_index=True)
    at = np.minimum(np.searchsorted(found, codes), max(len(found) - 1, 0))
    hit = found[at] == codes if len(found) else np.zeros(len(codes), dtype=bool)
    return np.where(hit, time[first[at]] if len(found) else 0, _NEVER)


def _cancel_times(ev: EventArrays, codes: np.ndarray, as_of: int, cancel: int) -> np.ndarray:
    ahead = (ev.time >= as_of) & (ev.kind == cancel)
    return _first_per_code(ev.code[ahead], ev.time[ahead], codes)


def _inactive_times(
    ev: EventArrays, codes: np.ndarray, as_of: int, spec: FeatureSpec
) -> np.ndarray:
    """When each customer has gone ``spec.horizon`` days without activity from a start (the
    as-of date or an activity after it) whose next activity is that far away or never."""
    cancel = spec.event_types.index(spec.cancel_type) if spec.cancel_type else -1
    ahead = (ev.time >= as_of) & (ev.kind != cancel)
    code = np.concatenate([codes, ev.code[ahead]])
    time = np.concatenate([np.full(len(codes), as_of, dtype=np.int64), ev.time[ahead]])
    after = np.concatenate([np.zeros(len(codes), np.int8), np.ones(int(ahead.sum()), np.int8)])
    order = np.lexsort((after, time, code))
    code, time = code[order], time[order]
    same = np.append(code[1:] == code[:-1], False)
    gap = np.append(time[1:] - time[:-1], 0)
    quiet = ~same | (gap >= spec.horizon * DAY_US)
    starts = _first_per_code(code[quiet], time[quiet], codes)
    return starts + spec.horizon * DAY_US


def survival_labels(
    ev: EventArrays, codes: np.ndarray, as_of: int, end: int, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Days to churn (float64) and whether it was observed (int8) for customers ``codes``
    (ascending) at ``as_of``, censored at ``end`` (µs; ``ev`` canonical, ``end`` ≥ its times)."""
    if spec.label == "cancel":
        assert spec.cancel_type is not None  # FeatureSpec refuses label=cancel without one
        churn = _cancel_times(ev, codes, as_of, spec.event_types.index(spec.cancel_type))
    else:
        churn = _inactive_times(ev, codes, as_of, spec)
    observed = churn <= end
    duration = (np.where(observed, churn, end) - as_of) / DAY_US
    return duration, observed.astype(np.int8)
