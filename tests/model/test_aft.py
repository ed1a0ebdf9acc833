"""The AFT likelihood: gradients match finite differences; curves are monotone in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from churnscale.exceptions import ConfigError
from churnscale.model.aft import Aft, fit_intercept, fit_sigma


@pytest.mark.parametrize("distribution", ["normal", "logistic"])
def test_gradients_are_the_loss_derivatives(distribution: str) -> None:
    rng = np.random.default_rng(0)
    log_t = rng.normal(2.0, 1.0, size=200)
    event = rng.random(200) < 0.5
    mu = rng.normal(2.0, 1.0, size=200)
    aft = Aft(distribution, 0.8)
    grad, hess = aft.gradients(log_t, event, mu)
    h = 1e-5
    up, down = aft.loss(log_t, event, mu + h), aft.loss(log_t, event, mu - h)
    np.testing.assert_allclose(grad, (up - down) / (2 * h), atol=1e-6)
    g_up, _ = aft.gradients(log_t, event, mu + h)
    g_down, _ = aft.gradients(log_t, event, mu - h)
    np.testing.assert_allclose(hess, np.maximum((g_up - g_down) / (2 * h), 1e-6), atol=1e-5)


@pytest.mark.parametrize("distribution", ["normal", "logistic"])
def test_survival_curves_are_monotone_within_unit_interval(distribution: str) -> None:
    aft = Aft(distribution, 1.3)
    times = np.linspace(0.0, 100.0, 300)
    curves = aft.survival(np.linspace(-3, 6, 40), times)
    assert curves[:, 0].tolist() == [1.0] * 40
    assert (curves >= 0).all() and (curves <= 1).all()
    assert (np.diff(curves, axis=1) <= 0).all()
    rmst = aft.restricted_mean(np.linspace(-3, 6, 40), 12.0)
    assert ((rmst > 0) & (rmst <= 12.0)).all() and (np.diff(rmst) > 0).all()


def test_intercept_and_scale_recover_a_simulated_distribution() -> None:
    rng = np.random.default_rng(1)
    log_t = 3.0 + 0.6 * rng.standard_normal(20_000)
    censor = np.log(rng.uniform(1, 80, size=20_000))
    event = log_t <= censor
    observed = np.minimum(log_t, censor)
    assert abs(fit_intercept(Aft("normal", 0.6), observed, event) - 3.0) < 0.03
    assert abs(fit_sigma("normal", observed, event, np.full(20_000, 3.0)) - 0.6) < 0.02


def test_unknown_distribution_is_refused() -> None:
    with pytest.raises(ConfigError, match="distribution"):
        Aft("weibull", 1.0)
    with pytest.raises(ConfigError, match="sigma"):
        Aft("normal", 0.0)
