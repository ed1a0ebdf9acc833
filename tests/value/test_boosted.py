"""BoostedBgNbd: the out-of-time label, the learned factor on BG/NBD, the plain rate model."""

from __future__ import annotations

import numpy as np
import pytest

from churnscale.exceptions import ConfigError
from churnscale.value import BgNbd, BoostedBgNbd, Rfm, out_of_time


def _customers(n: int, seed: int) -> Rfm:
    """Purchase histories simulated from a BG/NBD process, each observed for 20-30 weeks."""
    rng = np.random.default_rng(seed)
    x, t_x, T = np.zeros(n), np.zeros(n), rng.uniform(20.0, 30.0, n)
    rate, drop = rng.gamma(0.5, 1 / 4.0, n), rng.beta(0.8, 2.5, n)
    for i in range(n):
        when = rng.exponential(1 / rate[i])
        while when <= T[i] and rng.random() >= drop[i]:
            x[i], t_x[i] = x[i] + 1, when
            when += rng.exponential(1 / rate[i])
    return Rfm(np.arange(n), x, t_x, T, np.where(x > 0, rng.uniform(5, 50, n), 0.0))


def test_out_of_time_counts_the_repeat_purchases_after_the_cutoff() -> None:
    customer = np.array([1, 1, 1, 1, 2, 2, 3])
    one, two, three = (
        ["1997-01-01", "1997-01-01", "1997-02-01", "1997-04-01"],
        ["1997-01-10", "1997-05-01"],
        ["1997-04-01"],
    )
    day = np.array([*one, *two, *three], dtype="datetime64[D]")
    rfm, purchases, horizon = out_of_time(
        customer,
        day,
        np.ones(7),
        cutoff=np.datetime64("1997-03-01"),
        end=np.datetime64("1997-05-01"),
    )
    # customer 3's first purchase comes after the cut-off: not in the training set
    assert rfm.customer.tolist() == [1, 2]
    assert rfm.frequency.tolist() == [1.0, 0.0]  # same-day purchases are one
    assert purchases.tolist() == [1.0, 1.0]  # the purchase on the end day counts
    assert horizon == pytest.approx(61 / 7)
    with pytest.raises(ConfigError, match="end: expected a date after the cut-off"):
        out_of_time(customer, day, np.ones(7), cutoff=day[3], end=day[3])


def test_the_learned_factor_multiplies_bgnbd_at_any_horizon() -> None:
    rfm = _customers(4000, seed=1)
    bgnbd = BgNbd.fit(rfm.frequency, rfm.recency, rfm.age)
    history = (rfm.frequency, rfm.recency, rfm.age)
    # the next 10 weeks bring twice what BG/NBD expects: the factor to learn is 2
    rng = np.random.default_rng(2)
    purchases = rng.poisson(2.0 * bgnbd.expected_purchases(10.0, *history)).astype(float)
    model = BoostedBgNbd(threads=1).fit(rfm, purchases, 10.0)
    for t in (10.0, 30.0):
        ratio = model.expected_purchases(t, rfm, bgnbd) / bgnbd.expected_purchases(t, *history)
        assert float(np.median(ratio)) == pytest.approx(2.0, rel=0.15), t
    # without the BG/NBD offset the same data give a rate: linear in the horizon
    plain = BoostedBgNbd(bgnbd_features=False, bgnbd_offset=False).fit(rfm, purchases, 10.0)
    np.testing.assert_allclose(
        plain.expected_purchases(30.0, rfm), 3.0 * plain.expected_purchases(10.0, rfm), rtol=1e-12
    )


def test_refuses_bad_purchases_and_prediction_before_fit() -> None:
    rfm = _customers(50, seed=3)
    with pytest.raises(ConfigError, match="purchases: expected a count >= 0 per customer"):
        BoostedBgNbd().fit(rfm, np.ones(49), 10.0)
    with pytest.raises(ConfigError, match="purchases: expected a count >= 0 per customer"):
        BoostedBgNbd().fit(rfm, -np.ones(50), 10.0)
    with pytest.raises(ConfigError, match="validation_fraction: expected in"):
        BoostedBgNbd(validation_fraction=1.0).fit(rfm, np.ones(50), 10.0)
    with pytest.raises(ConfigError, match="bags: expected an integer >= 1, got 0"):
        BoostedBgNbd(bags=0).fit(rfm, np.ones(50), 10.0)
    with pytest.raises(ConfigError, match="BoostedBgNbd: expected a fitted model"):
        BoostedBgNbd().expected_purchases(10.0, rfm)
