"""Frequency, recency, age and mean spend of each customer from purchase events.

Purchases on the same day are one purchase (their amounts summed), as in the BG/NBD papers;
the first purchase is not a repeat: ``frequency`` counts the repeat purchase days,
``recency`` is the time from the first purchase to the last, ``age`` from the first purchase
to ``end``, ``mean_spend`` the mean amount of the repeat purchase days (0 without repeats).
Times are in ``unit_days`` (7: weeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rfm:
    """One row per customer, customers sorted."""

    customer: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    mean_spend: np.ndarray


def rfm_of(
    customer: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray,
    *,
    end: np.datetime64,
    unit_days: float = 7.0,
) -> Rfm:
    """The :class:`Rfm` of events on or before ``end`` (``day``: datetime64[D])."""
    day = np.asarray(day, dtype="datetime64[D]")
    keep = day <= end
    customer, day, amount = np.asarray(customer)[keep], day[keep], np.asarray(amount)[keep]
    # one purchase per customer and day
    keys, inverse = np.unique(
        np.rec.fromarrays([customer, day.astype(np.int64)]), return_inverse=True
    )
    spend = np.bincount(inverse, weights=amount.astype(np.float64), minlength=len(keys))
    ids = keys["f0"]
    days = keys["f1"].astype(np.float64)
    people, first_index, counts = np.unique(ids, return_index=True, return_counts=True)
    first = days[first_index]
    last = days[first_index + counts - 1]
    total = np.add.reduceat(spend, first_index)
    first_spend = spend[first_index]
    frequency = (counts - 1).astype(np.float64)
    repeat_spend = total - first_spend
    mean = np.divide(repeat_spend, frequency, out=np.zeros_like(total), where=frequency > 0)
    end_day = float(np.asarray(end, dtype="datetime64[D]").astype(np.int64))
    return Rfm(
        people,
        frequency,
        (last - first) / unit_days,
        (end_day - first) / unit_days,
        mean,
    )
