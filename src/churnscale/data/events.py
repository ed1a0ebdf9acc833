"""The event log behind the synthetic snapshot: logins, usage, payments, tickets, cancellations.

For the customers of :mod:`churnscale.data.synthetic` (same seed, same customers), events run
from each customer's signup to :data:`LOG_END`, 90 days after the snapshot date. Rates follow
the snapshot's attributes: logins follow ``sessions_30d`` and ``sessions_trend``, usage events
``usage_minutes_30d`` and ``usage_trend``, exactly ``support_tickets_90d`` tickets fall in the
90 days before the snapshot, roughly ``late_payments_12m`` of the last year's monthly payments
are late. A churned customer cancels within 90 days after the snapshot and their activity fades
towards the cancellation; nobody else cancels.

Customers are made in sub-blocks of :data:`SUB_ROWS`, each from its own seed derived from
``(seed, block, sub-block)``, so the log is identical for a seed whatever the threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from churnscale.data.synthetic import BLOCK_ROWS, SNAPSHOT, GeneratorSpec, make_block

EVENT_TYPES = ("login", "usage", "payment", "support_ticket", "plan_change", "cancel")
LOGIN, USAGE, PAYMENT, TICKET, PLAN_CHANGE, CANCEL = range(len(EVENT_TYPES))
SUB_ROWS = 1_024
DAY = 86_400
MONTH = 30.44 * DAY
HORIZON_DAYS = 90
SNAPSHOT_S = int(SNAPSHOT.astype("datetime64[s]").astype(np.int64))
LOG_END_S = SNAPSHOT_S + HORIZON_DAYS * DAY
LOG_END = np.datetime64(LOG_END_S, "s")
EPOCH_S = SNAPSHOT_S - 2**30  # event seconds are stored relative to this in sort keys
EVENT_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string()),
        pa.field("timestamp", pa.timestamp("us")),
        pa.field("event_type", pa.dictionary(pa.int32(), pa.string())),
        pa.field("amount", pa.float64()),
    ]
)


@dataclass
class _Customers:
    """The snapshot attributes of one sub-block that shape its events."""

    ids: pa.Array
    signup: np.ndarray  # seconds since the epoch
    end: np.ndarray  # last moment of activity: cancellation or the end of the log
    churned: np.ndarray
    monthly: np.ndarray
    usage: np.ndarray
    usage_trend: np.ndarray
    sessions: np.ndarray
    sessions_trend: np.ndarray
    tickets: np.ndarray
    late: np.ndarray


@dataclass
class _Events:
    owner: list[np.ndarray]
    time: list[np.ndarray]
    kind: list[np.ndarray]
    amount: list[np.ndarray]

    def add(self, owner: np.ndarray, time: np.ndarray, kind: int, amount: np.ndarray) -> None:
        self.owner.append(owner)
        self.time.append(time)
        self.kind.append(np.full(len(owner), kind, dtype=np.int8))
        self.amount.append(amount)


def _customers(block: pa.RecordBatch, rng: np.random.Generator) -> _Customers:
    def col(name: str) -> np.ndarray:
        return np.asarray(block.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    signup_days = (
        block.column("signup_date")
        .to_numpy(zero_copy_only=False)
        .astype("datetime64[D]")
        .astype(np.int64)
    )
    # a customer who signed up on the snapshot day is active for at least its first hour
    signup = np.minimum(signup_days * DAY + rng.integers(0, DAY, block.num_rows), SNAPSHOT_S - 3600)
    churned = col("churned") > 0
    cancel = SNAPSHOT_S + rng.integers(DAY, HORIZON_DAYS * DAY, block.num_rows)
    return _Customers(
        ids=block.column("customer_id"),
        signup=signup.astype(np.float64),
        end=np.where(churned, cancel, LOG_END_S).astype(np.float64),
        churned=churned,
        monthly=col("monthly_charges"),
        usage=col("usage_minutes_30d"),
        usage_trend=col("usage_trend"),
        sessions=col("sessions_30d"),
        sessions_trend=col("sessions_trend"),
        tickets=col("support_tickets_90d").astype(np.int64),
        late=col("late_payments_12m"),
    )


def _poisson_times(
    rng: np.random.Generator,
    rate_per_day: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    *,
    fade: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Owners and times of a Poisson process on ``[start, stop)``; faded ones decay linearly."""
    length = np.maximum(stop - start, 0.0)
    fading = np.zeros(len(start), dtype=bool) if fade is None else fade
    mean = rate_per_day * length / DAY * np.where(fading, 0.5, 1.0)
    owner = np.repeat(np.arange(len(start)), rng.poisson(mean))
    u = rng.random(len(owner))
    u = np.where(fading[owner], 1.0 - np.sqrt(1.0 - u), u)
    return owner, start[owner] + u * length[owner]


def _activity(rng: np.random.Generator, c: _Customers, out: _Events) -> None:
    """Logins and usage: a level before the last 30 days, the trend-shifted level after."""
    recent = c.signup.clip(SNAPSHOT_S - 30 * DAY)
    snapshot = np.full(len(recent), float(SNAPSHOT_S))
    logins = np.maximum(c.sessions, 0.5) / 30.0
    for kind, rate, trend in (
        (LOGIN, logins, c.sessions_trend),
        (USAGE, logins / 2, c.usage_trend),
    ):
        periods = (
            (rate / np.clip(trend, 0.05, 5.0), c.signup, recent, None),
            (rate, recent, snapshot, None),
            (rate, snapshot, c.end, c.churned),
        )
        for r, start, stop, fade in periods:
            owner, time = _poisson_times(rng, r, start, stop, fade=fade)
            amount = np.full(len(owner), np.nan)
            if kind == USAGE:
                per_event = c.usage / np.maximum(30.0 * rate, 1.0)
                amount = np.round(per_event[owner] * rng.lognormal(0.0, 0.3, len(owner)), 1)
            out.add(owner, time, kind, amount)


def _payments(rng: np.random.Generator, c: _Customers, out: _Events) -> None:
    """One payment a month from signup; some in the last year are 5–20 days late."""
    count = np.floor((c.end - c.signup) / MONTH).astype(np.int64) + 1
    owner = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    k = np.arange(len(owner)) - first[owner]
    time = c.signup[owner] + k * MONTH + rng.random(len(owner)) * DAY
    last_year = (time >= SNAPSHOT_S - 365 * DAY) & (time < SNAPSHOT_S)
    late = last_year & (rng.random(len(owner)) < np.minimum(c.late / 12.0, 1.0)[owner])
    time = np.where(late, time + rng.uniform(5, 20, len(owner)) * DAY, time)
    time = np.minimum(time, c.end[owner] - 1.0)
    out.add(owner, time, PAYMENT, c.monthly[owner])


def _tickets_and_plans(rng: np.random.Generator, c: _Customers, out: _Events) -> None:
    """Exactly ``support_tickets_90d`` tickets in the last 90 days; a background rate around."""
    window = c.signup.clip(SNAPSHOT_S - 90 * DAY)
    owner = np.repeat(np.arange(len(c.tickets)), c.tickets)
    span = SNAPSHOT_S - window[owner]
    out.add(
        owner, window[owner] + rng.random(len(owner)) * span, TICKET, np.full(len(owner), np.nan)
    )
    snapshot = np.full(len(c.signup), float(SNAPSHOT_S))
    for rate, start, stop in (
        (np.full(len(c.signup), 0.6 / 90), c.signup, window),
        (np.where(c.churned, 1.5, 0.6) / 90, snapshot, c.end),
    ):
        owner, time = _poisson_times(rng, rate, start, stop)
        out.add(owner, time, TICKET, np.full(len(owner), np.nan))
    owner, time = _poisson_times(rng, np.full(len(c.signup), 0.25 / 365), c.signup, c.end)
    out.add(owner, time, PLAN_CHANGE, np.full(len(owner), np.nan))
    owner = np.flatnonzero(c.churned)
    out.add(owner, c.end[owner], CANCEL, np.full(len(owner), np.nan))


def events_of(
    block: pa.RecordBatch, *, seed: int, index: int, sub: int, keep: int = SUB_ROWS
) -> pa.RecordBatch:
    """The events of sub-block ``sub`` of the full ``block`` ``index``, by customer then time.

    The whole sub-block is always drawn, so a customer's events never depend on the total size;
    only the events of its first ``keep`` customers are returned.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, sub, 0xE7E7]))
    customers = _customers(block.slice(sub * SUB_ROWS, SUB_ROWS), rng)
    out = _Events([], [], [], [])
    _activity(rng, customers, out)
    _payments(rng, customers, out)
    _tickets_and_plans(rng, customers, out)
    owner = np.concatenate(out.owner)
    seconds = np.floor(np.concatenate(out.time)).astype(np.int64)
    kind = np.concatenate(out.kind)
    amount = np.concatenate(out.amount)
    # one int64 key (customer, second, type); a stable sort equals lexsort on the three
    key = (owner.astype(np.int64) << 34) | ((seconds - EPOCH_S) << 3) | kind.astype(np.int64)
    order = np.argsort(key, kind="stable")
    order = order[owner[order] < keep]
    amount = amount[order]
    codes = pa.array(kind[order].astype(np.int32))
    return pa.RecordBatch.from_arrays(
        [
            customers.ids.take(pa.array(owner[order])),
            pa.array(seconds[order] * 1_000_000, pa.int64()).cast(pa.timestamp("us")),
            pa.DictionaryArray.from_arrays(codes, pa.array(EVENT_TYPES)),
            pa.array(amount, mask=np.isnan(amount)),
        ],
        schema=EVENT_SCHEMA,
    )


def _tasks(spec: GeneratorSpec, index: int) -> list[tuple[pa.RecordBatch, int, int, int]]:
    """The full block ``index``, each sub-block number and how many of its customers to keep."""
    block = make_block(GeneratorSpec((index + 1) * BLOCK_ROWS, spec.seed), index)
    rows = min(BLOCK_ROWS, spec.rows - index * BLOCK_ROWS)
    subs = range(-(-rows // SUB_ROWS))
    return [(block, index, sub, min(SUB_ROWS, rows - sub * SUB_ROWS)) for sub in subs]


def generate_events(spec: GeneratorSpec, *, threads: int = 2) -> Iterator[pa.RecordBatch]:
    """Yield the event log of ``spec``'s customers, sub-block by sub-block, in order."""
    workers = max(threads, 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index in range(spec.blocks):
            tasks = _tasks(spec, index)
            for first in range(0, len(tasks), 2 * workers):
                window = tasks[first : first + 2 * workers]
                yield from pool.map(
                    lambda t: events_of(t[0], seed=spec.seed, index=t[1], sub=t[2], keep=t[3]),
                    window,
                )


def generate_events_table(rows: int, seed: int = 0) -> pa.Table:
    """The whole event log of ``rows`` customers in memory: for tests and small examples."""
    return pa.Table.from_batches(
        list(generate_events(GeneratorSpec(rows, seed), threads=1)), schema=EVENT_SCHEMA
    )


__all__ = [
    "BLOCK_ROWS",
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "LOG_END",
    "generate_events",
    "generate_events_table",
]
