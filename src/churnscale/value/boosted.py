"""BG/NBD corrected by LightGBM learned out of time (issue 19 part 2, the combination).

BG/NBD assumes every customer buys at a steady rate until an unseen drop-out; where the data
disagree (CDNOW's cohort buys more in 1998 than that implies) a model trained on what happened
after an earlier cut-off can correct it. :class:`BoostedBgNbd`:

- **fit** at a cut-off ``c`` on each customer's :class:`~churnscale.value.rfm.Rfm` at ``c``
  and the repeat purchases of a known window ``(c, c + h]`` (:func:`out_of_time`): BG/NBD is
  fitted on the RFM at ``c``; a Poisson LightGBM learns ``log`` of a per-customer factor with
  ``log E_BG/NBD[purchases in h]`` as its offset (init score) and the RFM, P(alive) and the
  expected purchases in ``h`` as features;
- **expected_purchases** ``(t, rfm)`` at a later date: BG/NBD refitted on ``rfm``, its expected
  purchases over ``t`` times the learned factor (features computed with the training ``h``).

``bgnbd_offset=False`` uses ``log h`` as the offset instead (a purchase rate learned by the
trees, times ``t``) and ``bgnbd_features=False`` drops the BG/NBD features: with both off it
is plain LightGBM on RFM, the baseline the combination is measured against
(``benchmarks/value.py``). Trees are small and stop early on a random 20% of the training
customers; ``bags`` models, each stopped on its own random 20%, are averaged (on CDNOW one such
model's predicted total moved by 15 points with the split's seed). Nothing is chosen by the
period being predicted.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import ConfigError
from churnscale.value.bgnbd import BgNbd
from churnscale.value.rfm import Rfm, rfm_of

RFM_FEATURES = ("frequency", "recency", "age", "weeks_since_last", "mean_spend")
BGNBD_FEATURES = ("p_alive", "expected_purchases_h")


def out_of_time(
    customer: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray,
    *,
    cutoff: np.datetime64,
    end: np.datetime64,
    unit_days: float = 7.0,
) -> tuple[Rfm, np.ndarray, float]:
    """The RFM of the customers seen by ``cutoff``, their repeat purchases in ``(cutoff, end]``
    and that window's length in ``unit_days``: a training set with a known outcome."""
    if not end > cutoff:
        raise ConfigError("end", expected=f"a date after the cut-off {cutoff}", received=end)
    before = rfm_of(customer, day, amount, end=cutoff, unit_days=unit_days)
    after = rfm_of(customer, day, amount, end=end, unit_days=unit_days)
    later = after.frequency[np.searchsorted(after.customer, before.customer)]
    span = np.asarray(end, dtype="datetime64[D]") - np.asarray(cutoff, dtype="datetime64[D]")
    days = float(span.astype(np.int64))
    return before, later - before.frequency, days / unit_days


def features(rfm: Rfm, bgnbd: BgNbd | None, horizon: float) -> np.ndarray:
    """The feature matrix: :data:`RFM_FEATURES`, then :data:`BGNBD_FEATURES` with a model."""
    columns = [rfm.frequency, rfm.recency, rfm.age, rfm.age - rfm.recency, rfm.mean_spend]
    if bgnbd is not None:
        x, t_x, T = rfm.frequency, rfm.recency, rfm.age
        columns += [bgnbd.p_alive(x, t_x, T), bgnbd.expected_purchases(horizon, x, t_x, T)]
    return np.column_stack(columns)


class BoostedBgNbd:
    """BG/NBD's expected purchases times a LightGBM factor learned out of time.

    >>> rng = np.random.default_rng(0)
    >>> rfm = Rfm(np.arange(400), rng.poisson(2.0, 400).astype(float),
    ...           rng.uniform(0, 10, 400), np.full(400, 12.0), rng.uniform(5, 50, 400))
    >>> model = BoostedBgNbd(max_rounds=20).fit(rfm, rng.poisson(1.0, 400).astype(float), 13.0)
    >>> model.expected_purchases(39.0, rfm).shape
    (400,)
    """

    def __init__(
        self,
        *,
        bgnbd_features: bool = True,
        bgnbd_offset: bool = True,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        max_rounds: int = 1000,
        patience: int = 50,
        validation_fraction: float = 0.2,
        bags: int = 5,
        threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.bgnbd_features = bgnbd_features
        self.bgnbd_offset = bgnbd_offset
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_rounds = max_rounds
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.bags = bags
        self.threads = threads
        self.seed = seed

    def fit(self, rfm: Rfm, purchases: np.ndarray, horizon: float) -> BoostedBgNbd:
        """Learn from ``rfm`` at a cut-off and the ``purchases`` of the next ``horizon``."""
        purchases = np.asarray(purchases, dtype=np.float64)
        if purchases.shape != rfm.frequency.shape or (purchases < 0).any():
            raise ConfigError(
                "purchases", expected="a count >= 0 per customer", received=purchases.shape
            )
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(
                "validation_fraction", expected="in (0, 1)", received=self.validation_fraction
            )
        if self.bags < 1:
            raise ConfigError("bags", expected="an integer >= 1", received=self.bags)
        self.horizon_ = float(horizon)
        self.bgnbd_ = BgNbd.fit(rfm.frequency, rfm.recency, rfm.age)
        X, offset = self._design(rfm, self.bgnbd_, self.horizon_)
        rng = np.random.default_rng(self.seed)
        self.boosters_ = [
            self._boost(X, purchases, offset, rng.random(len(X)) < self.validation_fraction)
            for _ in range(self.bags)
        ]
        return self

    def _boost(
        self, X: np.ndarray, y: np.ndarray, offset: np.ndarray, held: np.ndarray
    ) -> lgb.Booster:
        """One Poisson booster, stopped early on the ``held`` customers."""
        train = lgb.Dataset(X[~held], y[~held], init_score=offset[~held])
        valid = lgb.Dataset(X[held], y[held], init_score=offset[held], reference=train)
        stop = lgb.early_stopping(self.patience, verbose=False)
        return lgb.train(
            self._params(), train, self.max_rounds, valid_sets=[valid], callbacks=[stop]
        )

    def expected_purchases(self, t: float, rfm: Rfm, bgnbd: BgNbd | None = None) -> np.ndarray:
        """Expected purchases in the next ``t`` of the customers of ``rfm`` (BG/NBD refitted
        on ``rfm`` unless ``bgnbd`` is given)."""
        if not hasattr(self, "boosters_"):
            raise ConfigError("BoostedBgNbd", expected="a fitted model (call fit)", received=None)
        model = bgnbd or BgNbd.fit(rfm.frequency, rfm.recency, rfm.age)
        X, _ = self._design(rfm, model, self.horizon_)
        if self.bgnbd_offset:
            base = np.log(model.expected_purchases(t, rfm.frequency, rfm.recency, rfm.age))
        else:
            base = np.full(len(X), np.log(t))
        factors = [np.exp(np.asarray(b.predict(X, raw_score=True))) for b in self.boosters_]
        return np.asarray(np.exp(base) * np.mean(factors, axis=0))

    def _design(self, rfm: Rfm, bgnbd: BgNbd, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        """Features and the offset for a training horizon."""
        X = features(rfm, bgnbd if self.bgnbd_features else None, horizon)
        if self.bgnbd_offset:
            expected = bgnbd.expected_purchases(horizon, rfm.frequency, rfm.recency, rfm.age)
            return X, np.log(expected)
        return X, np.full(len(X), np.log(horizon))

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "poisson",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "num_threads": self.threads,
            "seed": self.seed,
            "deterministic": True,
            "verbose": -1,
        }
