"""Reading an experiment's log: per-arm outcome rates, the effect with fixed-horizon and
sequential intervals, and the randomized rows as an uplift training set.

The log (:mod:`churnscale.serving.experiment` writes it) holds assignments and outcomes as JSON
lines; a customer's first assignment is joined with their latest outcome. The effect of arm
``treat`` against ``control`` is estimated two ways:

- **fixed horizon**: the difference in outcome rate between the arms' randomized rows, with a
  normal 95% interval, valid when read once at a horizon fixed in advance;
- **sequential**: the inverse-propensity estimate over every joined row (policy rows included,
  each weighted by its logged probability), with an asymptotic confidence sequence
  (Waudby-Smith et al., "Time-uniform central limit theory", 2023): it covers the effect at
  every number of outcomes at once with probability 1 − α, so looking early and often does not
  inflate the error rate. Its tuning ρ makes it tightest near ``planned`` outcomes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from churnscale.evaluation.uplift import Effect, effect
from churnscale.exceptions import SourceError

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Joined:
    """One customer's first assignment joined with their latest outcome."""

    customer_id: str
    arm: str
    propensity: float
    mode: str
    x: dict[str, Any]
    outcome: int


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """The log's entries, in order (a torn last line, from a crash mid-write, is skipped)."""
    try:
        handle = path.open()
    except OSError as exc:
        raise SourceError(str(path), f"cannot read the experiment log: {exc}") from exc
    with handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                yield entry


def joined_rows(path: Path) -> list[Joined]:
    """Every assigned customer with an outcome, in order of first assignment."""
    assigned: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, int] = {}
    for entry in read_log(path):
        customer = str(entry.get("customer_id"))
        if entry.get("type") == "assignment":
            assigned.setdefault(customer, entry)
        elif entry.get("type") == "outcome":
            outcomes[customer] = int(entry["outcome"])
    return [
        Joined(c, str(a["arm"]), float(a["propensity"]), str(a["mode"]), a["x"], outcomes[c])
        for c, a in assigned.items()
        if c in outcomes
    ]


@dataclass(frozen=True)
class ExperimentReport:
    """Outcome rate per arm and the effect of ``treat`` against ``control``."""

    assignments: int
    outcomes: int
    arms: dict[str, dict[str, float]]
    fixed: Effect
    sequential: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        estimate, low, high = self.sequential
        return {
            "assignments": self.assignments,
            "outcomes": self.outcomes,
            "arms": self.arms,
            "fixed_horizon": {
                "difference": self.fixed.uplift,
                "interval": [self.fixed.low, self.fixed.high],
            },
            "sequential": {"estimate": estimate, "interval": [low, high]},
        }


def confidence_sequence(
    values: np.ndarray, *, alpha: float = 0.05, planned: int = 1_000
) -> tuple[float, float, float]:
    """Mean of ``values`` with an asymptotic confidence sequence valid at every sample size."""
    n = values.size
    if n < 2:
        return float("nan"), float("nan"), float("nan")
    mean, variance = float(values.mean()), float(values.var(ddof=1))
    log_term = -2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)
    rho2 = log_term / max(planned, 2)
    spread = n * variance * rho2 + 1
    half = math.sqrt(2 * spread / (n**2 * rho2) * math.log(math.sqrt(spread) / alpha))
    return mean, mean - half, mean + half


def report(
    path: Path, *, treat: str, control: str, alpha: float = 0.05, planned: int = 1_000
) -> ExperimentReport:
    """Per-arm outcome rates and the effect, from the log at ``path``."""
    rows = joined_rows(path)
    assignments = sum(1 for e in read_log(path) if e.get("type") == "assignment")
    arms: dict[str, dict[str, float]] = {}
    for arm in sorted({r.arm for r in rows}):
        outcomes = np.array([r.outcome for r in rows if r.arm == arm], dtype=np.float64)
        arms[arm] = {"rows": float(outcomes.size), "rate": float(outcomes.mean())}
    randomized = [r for r in rows if r.mode == "random" and r.arm in (treat, control)]
    y = np.array([r.outcome for r in randomized], dtype=np.float64)
    t = np.array([r.arm == treat for r in randomized])
    pseudo = np.array(
        [
            r.outcome * ((r.arm == treat) / r.propensity - (r.arm == control) / r.propensity)
            for r in rows
            if r.arm in (treat, control) and r.propensity > 0
        ],
        dtype=np.float64,
    )
    return ExperimentReport(
        assignments,
        len(rows),
        arms,
        effect(y, t),
        confidence_sequence(pseudo, alpha=alpha, planned=planned),
    )


def training_table(path: Path, *, treatment_col: str = "arm", outcome: str = "outcome") -> pa.Table:
    """The joined rows as an uplift training set: the features as served, the arm, the outcome
    and the logged propensity."""
    rows = joined_rows(path)
    if not rows:
        raise SourceError(str(path), "no assignment in the log has an outcome yet")
    return pa.Table.from_pylist(
        [
            {**r.x, treatment_col: r.arm, outcome: r.outcome, "propensity": r.propensity}
            for r in rows
        ]
    )
