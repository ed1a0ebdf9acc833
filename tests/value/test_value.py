"""BG/NBD and Gamma-Gamma: CDNOW's published fits, and the closed forms against simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from churnscale.value import BgNbd, GammaGamma, rfm_of

CDNOW = Path(__file__).resolve().parents[3] / "shared/datasets/cdnow_events/CDNOW_master.csv"


def _cdnow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = pacsv.read_csv(CDNOW)
    text = pc.cast(table["date"], pa.string())
    day = pc.strptime(text, format="%Y%m%d", unit="s").cast(pa.date32()).to_numpy()
    return table["customer_id"].to_numpy(), day, table["dollar_value"].to_numpy()


def test_cdnow_fits_equal_the_published_parameters_within_one_percent() -> None:
    customer, day, amount = _cdnow()
    rfm = rfm_of(customer, day, amount, end=np.datetime64("1997-09-30"))
    assert len(rfm.customer) == 23_570
    bgnbd = BgNbd.fit(rfm.frequency, rfm.recency, rfm.age)
    # lifetimes 0.11.3 on the full file (../shared/datasets/README.md)
    published = {"r": 0.2516, "alpha": 4.789, "a": 0.7234, "b": 2.161}
    for name, value in published.items():
        assert getattr(bgnbd, name) == pytest.approx(value, rel=0.01), name
    spend = GammaGamma.fit(rfm.frequency, rfm.mean_spend)
    for name, value in {"p": 6.275, "q": 3.624, "gamma": 14.98}.items():
        assert getattr(spend, name) == pytest.approx(value, rel=0.01), name


def test_expected_purchases_of_a_new_customer_equal_simulation() -> None:
    model = BgNbd(r=0.5, alpha=4.0, a=0.8, b=2.5)
    rng = np.random.default_rng(0)
    n, t = 400_000, 20.0
    rate = rng.gamma(model.r, 1.0 / model.alpha, size=n)
    drop = rng.beta(model.a, model.b, size=n)
    purchases = np.minimum(rng.poisson(rate * t), rng.geometric(drop))
    zero = np.zeros(1)
    expected = float(model.expected_purchases(t, zero, zero, zero)[0])
    assert expected == pytest.approx(purchases.mean(), rel=0.01)


def test_p_alive_and_spend_closed_forms() -> None:
    model = BgNbd(r=0.25, alpha=4.8, a=0.72, b=2.16)
    x, t_x, T = np.array([0.0, 2.0, 2.0]), np.array([0.0, 30.0, 5.0]), np.array([30.0] * 3)
    alive = model.p_alive(x, t_x, T)
    assert alive[0] == 1.0  # no repeat purchase: never seen to drop out
    assert alive[1] > alive[2]  # a recent last purchase: more likely alive
    odds = model.a / (model.b + 1) * ((model.alpha + 30) / (model.alpha + 5)) ** (model.r + 2)
    assert alive[2] == pytest.approx(1 / (1 + odds), abs=1e-15)
    spend = GammaGamma(p=6.0, q=3.6, gamma=15.0)
    got = spend.expected_spend(np.array([0.0, 4.0]), np.array([0.0, 50.0]))
    assert got[0] == pytest.approx(6.0 * 15.0 / 2.6)
    assert got[1] == pytest.approx((15.0 + 200.0) * 6.0 / (24.0 + 2.6))
