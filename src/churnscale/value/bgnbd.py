"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013): customer value.

From each customer's repeat ``frequency`` x, ``recency`` t_x (time of the last repeat purchase
since the first) and ``age`` T (time since the first purchase), in any one time unit:

- :class:`BgNbd`: purchases follow a Poisson process (rate ~ Gamma(r, alpha)) until the customer
  drops out after any purchase with probability p ~ Beta(a, b). Fitted by maximum likelihood;
  gives P(alive), the expected purchases over the next ``t`` and P(no purchase in ``t``).
- :class:`GammaGamma`: spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma), independent of
  the purchase process; gives each repeat customer's expected spend per purchase.

Value over a horizon = expected purchases × expected spend. The closed forms are the papers';
tests hold the fit to published parameters on CDNOW and the formulas to direct evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from churnscale.exceptions import ConfigError


def _arrays(*values: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(v, dtype=np.float64) for v in values]
    if any(v.shape != out[0].shape for v in out):
        raise ConfigError("rfm", expected="arrays of one length", received=[v.shape for v in out])
    return out


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters."""

    r: float
    alpha: float
    a: float
    b: float

    @staticmethod
    def log_likelihood(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Each customer's log-likelihood under ``params`` = (r, alpha, a, b)."""
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        a4 = np.full_like(x, -np.inf)
        a4[repeat] = (
            np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
        )
        return np.asarray(a1 + a2 + np.logaddexp(a3, a4))

    @classmethod
    def fit(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BgNbd:
        """Maximum likelihood (Nelder-Mead then L-BFGS-B on log parameters)."""
        x, t_x, T = _arrays(x, t_x, T)

        def loss(log_params: np.ndarray) -> float:
            return -float(cls.log_likelihood(np.exp(log_params), x, t_x, T).sum())

        start = np.log([1.0, max(float(T.mean()), 1e-3), 1.0, 1.0])
        rough = minimize(loss, start, method="Nelder-Mead", options={"maxiter": 4000})
        done = minimize(loss, rough.x, method="L-BFGS-B")
        best = done.x if done.fun <= rough.fun else rough.x
        return cls(*(float(v) for v in np.exp(best)))

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(the customer has not dropped out by T)."""
        x, t_x, T = _arrays(x, t_x, T)
        odds = np.where(
            x > 0,
            self.a
            / np.maximum(self.b + x - 1, 1e-300)
            * ((self.alpha + T) / (self.alpha + t_x)) ** (self.r + x),
            0.0,
        )
        return np.asarray(1.0 / (1.0 + odds))

    def expected_purchases(
        self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Expected purchases in (T, T + t] given the customer's history."""
        x, t_x, T = _arrays(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        ratio = (alpha + T) / (alpha + T + t)
        tail = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        head = (a + b + x - 1) / (a - 1) * (1.0 - ratio ** (r + x) * tail)
        return np.asarray(head * self.p_alive(x, t_x, T))


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters."""

    p: float
    q: float
    gamma: float

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Each repeat customer's log-likelihood of mean spend ``m`` over ``x`` purchases."""
        p, q, g = params
        return np.asarray(
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(g)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(g + m * x)
        )

    @classmethod
    def fit(cls, x: np.ndarray, m: np.ndarray) -> GammaGamma:
        """Maximum likelihood on customers with ``x > 0`` repeat purchases and ``m > 0``."""
        x, m = _arrays(x, m)
        keep = (x > 0) & (m > 0)
        xs, ms = x[keep], m[keep]

        def loss(log_params: np.ndarray) -> float:
            return -float(cls.log_likelihood(np.exp(log_params), xs, ms).sum())

        rough = minimize(
            loss, np.log([1.0, 1.0, 1.0]), method="Nelder-Mead", options={"maxiter": 4000}
        )
        done = minimize(loss, rough.x, method="L-BFGS-B")
        best = done.x if done.fun <= rough.fun else rough.x
        return cls(*(float(v) for v in np.exp(best)))

    def expected_spend(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Expected spend per purchase; the population mean for customers without repeats."""
        x, m = _arrays(x, m)
        population = self.p * self.gamma / (self.q - 1)
        weighted = (self.gamma + m * x) * self.p / (self.p * x + self.q - 1)
        return np.asarray(np.where(x > 0, weighted, population))
