"""A randomized retention offer with a known, heterogeneous effect, for ``generate --treatment``.

Half the customers (drawn per block from its own seed, so the base columns are unchanged) get
the offer. The offer moves the churn log-odds by an amount that depends on the customer:
month-to-month customers paying a lot, or with low usage or satisfaction, respond (churn less);
long-tenure customers on autopay with no tickets are "sleeping dogs" who churn *more* when
contacted; the rest barely react. The outcome written is ``retained`` (1 = stayed), drawn under
the arm each customer got, and ``true_uplift`` is P(retained | offer) − P(retained | no offer)
of that customer, so tests and benchmarks know the effect of every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: The treatment column and its two values.
OFFER_COLUMN = "offer"
TREATED = "offer"
CONTROL = "no_offer"
#: Outcome and ground-truth columns added in treatment mode.
OUTCOME_COLUMN = "retained"
TRUE_UPLIFT_COLUMN = "true_uplift"
#: Share of customers who get the offer (the known propensity).
TREATED_SHARE = 0.5


@dataclass(frozen=True)
class OfferInputs:
    """The customer attributes the offer's effect depends on (one array each, one row per
    customer)."""

    contract: np.ndarray
    monthly: np.ndarray
    usage_trend: np.ndarray
    satisfaction: np.ndarray
    tenure: np.ndarray
    autopay: np.ndarray
    tickets: np.ndarray


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def offer_effect(x: OfferInputs) -> np.ndarray:
    """The offer's shift of each customer's churn log-odds (negative = the offer keeps them)."""
    responds = (x.contract == 0) * (
        1.4 * np.tanh(np.maximum(x.monthly - 45.0, 0.0) / 25.0)
        + 1.1 * (x.usage_trend < 0.8)
        + 0.6 * (x.satisfaction <= 2)
    )
    sleeping_dog = (x.tenure >= 36) & x.autopay & (x.tickets == 0)
    return np.asarray(-responds + 1.2 * sleeping_dog - 0.1, dtype=np.float64)


def offer_columns(
    logit: np.ndarray, inputs: OfferInputs, rng: np.random.Generator
) -> dict[str, pa.Array]:
    """The offer (randomized), the outcome under it and each customer's true uplift."""
    n = logit.shape[0]
    treated = rng.random(n) < TREATED_SHARE
    churn_control = _sigmoid(logit)
    churn_offer = _sigmoid(logit + offer_effect(inputs))
    churned = rng.random(n) < np.where(treated, churn_offer, churn_control)
    return {
        OFFER_COLUMN: pa.array(np.where(treated, TREATED, CONTROL)),
        OUTCOME_COLUMN: pa.array((~churned).astype(np.int8)),
        TRUE_UPLIFT_COLUMN: pa.array(np.round(churn_control - churn_offer, 6)),
    }
