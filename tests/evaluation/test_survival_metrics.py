"""Survival metrics equal scikit-survival's (the reference implementation) to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from churnscale.evaluation import survival as sm
from churnscale.model.aft import Aft

TOL = 1e-12


def _data(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=rows)
    time = np.ceil(rng.exponential(20.0 * np.exp(-risk)) + 0.01)  # integer times: many ties
    censor = np.minimum(np.ceil(rng.uniform(1, 80, size=rows)), 45.0)  # ends at 45
    event = (time <= censor) & (time < 45)
    observed = np.where(event, time, censor)
    return observed, event, risk + rng.normal(scale=0.5, size=rows)


@pytest.fixture(params=[0, 1])
def split(request: pytest.FixtureRequest) -> tuple[np.ndarray, ...]:
    t, e, r = _data(request.param, 1200)
    return t[:800], e[:800], t[800:], e[800:], r[800:]


def test_kaplan_meier_equals_scikit_survival() -> None:
    t, e, _ = _data(3, 500)
    for reverse in (False, True):
        times, prob = kaplan_meier_estimator(e, t, reverse=reverse)
        curve = sm.kaplan_meier(t, e, reverse=reverse)
        np.testing.assert_allclose(curve.at(times), prob, atol=TOL, rtol=0)


def test_concordance_equals_scikit_survival(split: tuple[np.ndarray, ...]) -> None:
    tt, te, t, e, r = split
    harrell = concordance_index_censored(e, t, r)[0]
    assert abs(sm.harrell_c(t, e, r) - harrell) < TOL
    r_tied = np.round(r, 1)  # ties in risk count one half
    assert abs(sm.harrell_c(t, e, r_tied) - concordance_index_censored(e, t, r_tied)[0]) < TOL
    for tau in (None, 30.0):
        uno = concordance_index_ipcw(Surv.from_arrays(te, tt), Surv.from_arrays(e, t), r, tau)[0]
        assert abs(sm.uno_c(tt, te, t, e, r, tau=tau) - uno) < TOL


def test_brier_and_auc_equal_scikit_survival(split: tuple[np.ndarray, ...]) -> None:
    tt, te, t, e, r = split
    train, test = Surv.from_arrays(te, tt), Surv.from_arrays(e, t)
    times = np.arange(2.0, 40.0)
    survival = Aft("logistic", 0.8).survival(3.0 - r, times)
    _, ref = brier_score(train, test, survival, times)
    mine = sm.brier_scores(tt, te, t, e, survival, times)
    np.testing.assert_allclose(mine, ref, atol=TOL, rtol=0)
    ibs = integrated_brier_score(train, test, survival, times)
    assert abs(sm.integrated_brier_score(tt, te, t, e, survival, times) - ibs) < TOL
    auc, _ = cumulative_dynamic_auc(train, test, r, times[:10])
    np.testing.assert_allclose(
        sm.cumulative_dynamic_auc(tt, te, t, e, r, times[:10]), auc, atol=TOL, rtol=0
    )


def test_km_calibration_groups_cover_every_row() -> None:
    t, e, r = _data(5, 300)
    survival = Aft("normal", 1.0).survival(3.0 - r, np.array([12.0]))[:, 0]
    groups = sm.km_calibration(t, e, survival, 12.0, groups=5)
    assert sum(g.rows for g in groups) == 300
    predicted = [g.predicted for g in groups]
    assert predicted == sorted(predicted)
    assert all(0.0 <= g.observed <= 1.0 for g in groups)
