"""Accelerated failure time (AFT): the time-to-churn distribution a survival model predicts.

``log T = mu(x) + sigma * eps``, with ``eps`` standard normal (log-normal times) or standard
logistic (log-logistic times). The trees learn ``mu(x)`` from the censored likelihood (the
gradient and Hessian below, one row per customer: no person-period expansion), so every
customer's survival curve has a closed form, ``S(t | x) = S_eps((log t - mu(x)) / sigma)``.

>>> aft = Aft("normal", 1.0)
>>> float(aft.survival(np.array([0.0]), np.array([1.0]))[0, 0])  # median at exp(mu) = 1
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, log_ndtr, ndtr

from churnscale.exceptions import ConfigError

Distribution = Literal["normal", "logistic"]
DISTRIBUTIONS: tuple[str, ...] = ("normal", "logistic")
#: Smallest Hessian handed to the trees (a censored row far below its time has almost none).
MIN_HESSIAN = 1e-6
#: Points of the grid the restricted mean lifetime is integrated on (trapezoids).
GRID_POINTS = 256


@dataclass(frozen=True)
class Aft:
    """An AFT error distribution and its scale ``sigma``."""

    distribution: str = "normal"
    sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                "distribution", expected=" or ".join(DISTRIBUTIONS), received=self.distribution
            )
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ConfigError("sigma", expected="a positive number", received=self.sigma)

    # ---- the error distribution -----------------------------------------------------------
    def _log_survival(self, z: np.ndarray) -> np.ndarray:
        if self.distribution == "normal":
            return np.asarray(log_ndtr(-z))
        return np.asarray(-np.logaddexp(0.0, z))

    def _log_density(self, z: np.ndarray) -> np.ndarray:
        if self.distribution == "normal":
            return np.asarray(-0.5 * z * z - 0.5 * np.log(2 * np.pi))
        return np.asarray(z - 2.0 * np.logaddexp(0.0, z))

    def _survival(self, z: np.ndarray) -> np.ndarray:
        if self.distribution == "normal":
            return np.asarray(ndtr(-z))
        return np.asarray(expit(-z))

    # ---- training -------------------------------------------------------------------------
    def z(self, log_time: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Standardised residuals ``(log t - mu) / sigma``."""
        return np.asarray((np.asarray(log_time, np.float64) - mu) / self.sigma)

    def loss(self, log_time: np.ndarray, event: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Negative log-likelihood of each row (without the terms that do not depend on mu)."""
        z = self.z(log_time, mu)
        return np.where(event, -self._log_density(z), -self._log_survival(z))

    def gradients(
        self, log_time: np.ndarray, event: np.ndarray, mu: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """First and second derivative of :meth:`loss` with respect to ``mu``."""
        z = self.z(log_time, mu)
        s = self.sigma
        if self.distribution == "normal":
            # censored: d/dz of -log Phi(-z) is the hazard lam = phi(z) / Phi(-z)
            lam = np.exp(self._log_density(z) - self._log_survival(z))
            grad = np.where(event, -z, -lam) / s
            hess = np.where(event, 1.0, lam * (lam - z)) / (s * s)
        else:
            p = expit(z)
            grad = np.where(event, 1.0 - 2.0 * p, -p) / s
            hess = np.where(event, 2.0, 1.0) * p * (1.0 - p) / (s * s)
        return grad, np.maximum(hess, MIN_HESSIAN)

    # ---- prediction -----------------------------------------------------------------------
    def survival(self, mu: np.ndarray, times: np.ndarray) -> np.ndarray:
        """S(t | x) of every customer (rows) at every time (columns); S(0) = 1."""
        times = np.asarray(times, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_t = np.log(times)
        z = (log_t[None, :] - np.asarray(mu, np.float64)[:, None]) / self.sigma
        return self._survival(z)

    def restricted_mean(self, mu: np.ndarray, horizon: float) -> np.ndarray:
        """Expected lifetime up to ``horizon``: the integral of S(t | x) over [0, horizon]."""
        grid = np.linspace(0.0, horizon, GRID_POINTS)
        curves = self.survival(mu, grid)
        return np.asarray(np.trapezoid(curves, grid, axis=1), dtype=np.float64)


def fit_intercept(aft: Aft, log_time: np.ndarray, event: np.ndarray, *, steps: int = 50) -> float:
    """The constant ``mu`` of maximum likelihood (Newton steps from the mean log time), where
    boosting starts from."""
    mu = float(np.mean(log_time))
    for _ in range(steps):
        grad, hess = aft.gradients(log_time, event, np.full(len(log_time), mu))
        step = float(grad.sum() / hess.sum())
        mu -= step
        if abs(step) < 1e-10:
            break
    return mu


def fit_sigma(distribution: str, log_time: np.ndarray, event: np.ndarray, mu: np.ndarray) -> float:
    """The scale of maximum likelihood given each row's ``mu`` (golden-section search on
    log sigma; the full likelihood, with its ``log sigma`` term for events)."""

    def nll(log_sigma: float) -> float:
        aft = Aft(distribution, float(np.exp(log_sigma)))
        events = float(np.count_nonzero(event))
        return float(aft.loss(log_time, event, mu).sum() + events * log_sigma)

    lo, hi = np.log(0.05), np.log(5.0)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2.0))
