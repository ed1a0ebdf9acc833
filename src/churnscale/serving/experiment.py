"""Experiments the service runs itself: action arms assigned by the id hash, logged with their
probability, and the outcomes ``/v1/feedback`` receives appended to the same log.

With ``CHURNSCALE_EXPERIMENT_ARMS="treat=0.5,control=0.5"`` and ``CHURNSCALE_EXPERIMENT_LOG``, every
answered customer with an id gets an action arm (``treat`` or ``control``, the actions of an uplift
policy), sticky by id: a BLAKE2b hash of the id keyed by ``CHURNSCALE_EXPERIMENT_NAME`` gives a
uniform number that picks the arm by weight. When the served model is an uplift model its policy
decides instead, except for an exploration share (``CHURNSCALE_EXPERIMENT_EXPLORATION``, 10%)
of customers (another hash of the id) who stay randomized; the probability of the arm logged is
then ``(1 − ε)·[policy chose it] + ε·weight``, so the log stays an unbiased randomized experiment
for inverse-propensity estimates and the next round's training set
(:mod:`churnscale.evaluation.experiment`).

Each line of the log is one JSON object: ``{"type": "assignment", "customer_id", "arm",
"propensity", "mode" ("random" | "policy"), "x" (the customer as served), "model_version",
"at"}`` or ``{"type": "outcome", "customer_id", "outcome" (0/1), "at"}``. Lines are appended
with one ``write`` each (O_APPEND), so processes can share the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnscale.config import Settings
from churnscale.exceptions import ConfigError

RANDOM, POLICY = "random", "policy"


@dataclass(frozen=True)
class ActionArms:
    """Action arms and their weights (summing to 1)."""

    names: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> ActionArms:
        """``treat=0.5,control=0.5`` (weights are normalised)."""
        pairs = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, _, weight = part.partition("=")
            try:
                pairs.append((name.strip(), float(weight)))
            except ValueError:
                raise ConfigError(
                    "CHURNSCALE_EXPERIMENT_ARMS", expected="name=weight,...", received=text
                ) from None
        total = sum(w for _, w in pairs)
        if len(pairs) < 2 or total <= 0 or any(w < 0 or not n for n, w in pairs):
            raise ConfigError(
                "CHURNSCALE_EXPERIMENT_ARMS",
                expected="two or more name=weight with positive weights",
                received=text,
            )
        return cls(tuple(n for n, _ in pairs), tuple(w / total for _, w in pairs))

    def pick(self, u: float) -> str:
        """The arm a uniform number ``u`` in [0, 1) falls in."""
        edge = 0.0
        for name, weight in zip(self.names, self.weights, strict=True):
            edge += weight
            if u < edge:
                return name
        return self.names[-1]

    def weight(self, name: str) -> float:
        """The random assignment probability of arm ``name`` (0 for an unknown arm)."""
        return dict(zip(self.names, self.weights, strict=True)).get(name, 0.0)


def uniform(customer_id: str, *, key: bytes, stream: bytes) -> float:
    """A number in [0, 1) fixed by the customer id (``stream`` separates independent draws)."""
    digest = hashlib.blake2b(stream + customer_id.encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class ExperimentLog:
    """Assigns action arms and appends assignments and outcomes to the log file."""

    def __init__(self, path: Path, arms: ActionArms, *, name: str, exploration: float) -> None:
        if not 0.0 <= exploration <= 1.0:
            raise ConfigError(
                "CHURNSCALE_EXPERIMENT_EXPLORATION",
                expected="a share in [0, 1]",
                received=exploration,
            )
        self.path = path
        self.arms = arms
        self.key = hashlib.blake2b(name.encode(), digest_size=16).digest()
        self.exploration = exploration
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def assign(
        self, customer_id: str, x: dict[str, Any], *, policy: str | None, version: str
    ) -> tuple[str, float]:
        """The customer's arm and its probability, logged (``policy``: the uplift policy's
        action, or None when the model has no policy)."""
        randomized = self.arms.pick(uniform(customer_id, key=self.key, stream=b"arm"))
        if policy is None:
            arm, propensity, mode = randomized, self.arms.weight(randomized), RANDOM
        else:
            explore = uniform(customer_id, key=self.key, stream=b"explore") < self.exploration
            arm = randomized if explore else policy
            propensity = self.exploration * self.arms.weight(arm) + (1 - self.exploration) * (
                arm == policy
            )
            mode = RANDOM if explore else POLICY
        self._write(
            {
                "type": "assignment",
                "customer_id": customer_id,
                "arm": arm,
                "propensity": propensity,
                "mode": mode,
                "x": x,
                "model_version": version,
            }
        )
        return arm, propensity

    def outcome(self, customer_id: str, outcome: bool) -> None:
        """Append an observed outcome (joined with the assignment when the log is read)."""
        self._write({"type": "outcome", "customer_id": customer_id, "outcome": int(outcome)})

    def _write(self, entry: dict[str, Any]) -> None:
        entry["at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        """Close the log file."""
        os.close(self._fd)


def experiment_log(settings: Settings) -> ExperimentLog | None:
    """The experiment ``CHURNSCALE_EXPERIMENT_*`` configures, or None without a log path."""
    if settings.experiment_log is None:
        return None
    return ExperimentLog(
        settings.experiment_log,
        ActionArms.parse(settings.experiment_arms),
        name=settings.experiment_name,
        exploration=settings.experiment_exploration,
    )
