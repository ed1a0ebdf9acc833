"""Whom to treat: an uplift model's answers turned into actions under a deploy-time policy.

A customer is treated when the action pays for itself, ``uplift × outcome_value > action_cost``
(``outcome_value`` is the worth of one more positive outcome; negative when the outcome is bad,
such as churn), and when their uplift reaches the policy's bar: a minimum uplift
(``threshold``), or the bar that lets a ``budget`` share of customers through, read from the
training customers' uplift quantiles the model carries (so one customer can be decided alone,
as the service does). :class:`UpliftDecisions` evaluates the model and the policy together on
encoded rows; :func:`rank_by_value` orders a batch for ``score`` and ``target``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from churnscale.exceptions import ConfigError
from churnscale.model.uplift import P_CONTROL, P_TREATED, UPLIFT, UpliftModel

if TYPE_CHECKING:
    from churnscale.config import Settings

#: The two actions an uplift policy answers.
TREAT = "treat"
NO_ACTION = "control"
#: Metadata key of the training customers' uplift at quantiles 0, 0.01, ..., 1.
QUANTILES_KEY = "uplift_quantiles"


@dataclass(frozen=True)
class UpliftPolicy:
    """What an action costs, what an outcome is worth, and how many may be treated."""

    action_cost: float = 0.0
    outcome_value: float = 1.0
    #: Share of customers to treat at most (the highest expected value first), or None.
    budget: float | None = None
    #: Minimum uplift to treat, or None.
    threshold: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> UpliftPolicy:
        """The policy of ``CHURNSCALE_UPLIFT_*`` (action cost, outcome value, budget,
        threshold)."""
        return cls(
            action_cost=settings.uplift_action_cost,
            outcome_value=settings.uplift_outcome_value,
            budget=settings.uplift_budget,
            threshold=settings.uplift_threshold,
        )

    def __post_init__(self) -> None:
        if self.budget is not None and not 0.0 <= self.budget <= 1.0:
            raise ConfigError("uplift budget", expected="a share in [0, 1]", received=self.budget)
        if self.outcome_value == 0.0:
            raise ConfigError("uplift outcome value", expected="non-zero", received=0.0)


def uplift_quantiles(uplift: np.ndarray) -> list[float]:
    """The uplift at quantiles 0, 0.01, ..., 1 (what a model carries for budgets)."""
    points = np.quantile(np.asarray(uplift, dtype=np.float64), np.linspace(0, 1, 101))
    return [float(v) for v in points]


def value_of(uplift: np.ndarray, policy: UpliftPolicy) -> np.ndarray:
    """Expected incremental value of treating each customer."""
    return np.asarray(uplift, dtype=np.float64) * policy.outcome_value - policy.action_cost


class UpliftDecisions:
    """An uplift model with its policy: outcomes and actions of encoded rows."""

    #: What evaluates the trees (as the service reports its predictor).
    kind = "lightgbm-uplift"

    def __init__(self, model: UpliftModel, policy: UpliftPolicy) -> None:
        self.model = model
        self.policy = policy
        self.bar = self._bar()

    def _bar(self) -> float:
        """The least value-oriented uplift that is treated (budget and threshold combined)."""
        bars = [-np.inf]
        if self.policy.threshold is not None:
            bars.append(self.policy.threshold * np.sign(self.policy.outcome_value))
        if self.policy.budget is not None:
            quantiles = self.model.metadata.get(QUANTILES_KEY)
            if not quantiles:
                raise ConfigError(
                    "uplift budget",
                    expected="a model trained with uplift quantiles",
                    received="a model without them",
                )
            oriented = np.sort(np.asarray(quantiles) * np.sign(self.policy.outcome_value))
            bars.append(float(np.quantile(oriented, 1.0 - self.policy.budget)))
            if self.policy.budget == 0.0:
                bars.append(np.inf)
        return float(max(bars))

    def decide_matrix(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Uplift, both arms' outcome probabilities, expected value and whether to treat."""
        out = self.model.outputs_of_matrix(matrix)
        value = value_of(out[UPLIFT], self.policy)
        oriented = out[UPLIFT] * np.sign(self.policy.outcome_value)
        out["value"] = value
        out["treat"] = (value > 0) & (oriented >= self.bar)
        return out

    def decide_one(self, row: np.ndarray) -> dict[str, float | str]:
        """One encoded customer's answer: probabilities, uplift and the action."""
        out = self.decide_matrix(row.reshape(1, -1))
        return {
            P_CONTROL: float(out[P_CONTROL][0]),
            UPLIFT: float(out[UPLIFT][0]),
            P_TREATED: float(out[P_TREATED][0]),
            "action": TREAT if bool(out["treat"][0]) else NO_ACTION,
        }

    # ---- the scorer the service evaluates (P(outcome | control) as its probability) -------
    def predict_one(self, row: np.ndarray) -> float:
        """P(outcome | control) of one encoded row."""
        return float(self.model.predict_matrix(row.reshape(1, -1))[0])

    def predict_matrix(self, matrix: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """P(outcome | control) of encoded rows (``threads`` ignored: one per booster)."""
        return self.model.predict_matrix(matrix)

    def warm(self) -> None:
        """Nothing to compile: the boosters are evaluated as they are."""


def rank_by_value(value: np.ndarray) -> np.ndarray:
    """Each row's rank by expected value (1 = treat first)."""
    order = np.argsort(-np.asarray(value, dtype=np.float64), kind="stable")
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(1, order.size + 1)
    return ranks
