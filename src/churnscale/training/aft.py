"""Boosting LightGBM trees on the censored AFT likelihood (:mod:`churnscale.model.aft`).

One row per customer, the same binned Datasets a binary model builds (its label is unused:
the custom objective reads each row's log duration and event from here), so memory is the
binary model's plus 5 bytes a row (float32 log duration, one byte event); the gradients are
computed in blocks into preallocated float32 arrays.

The distribution and scale are chosen on the early-stopping side, never the hold-out: each
candidate boosts with early stopping on the validation negative log-likelihood, the one with
the lowest full likelihood there wins, and its scale is then re-fitted there by maximum
likelihood with the trees fixed (:func:`~churnscale.model.aft.fit_sigma`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import TrainingError
from churnscale.model.aft import Aft, fit_intercept, fit_sigma
from churnscale.training.local import TrainParams

#: Rows per block of the gradient computation (bounds its float64 temporaries).
GRADIENT_BLOCK = 1 << 20
#: The (distribution, sigma) pairs tried when neither is given.
CANDIDATES: tuple[tuple[str, float], ...] = (
    ("normal", 0.7),
    ("normal", 1.0),
    ("normal", 1.4),
    ("logistic", 0.5),
    ("logistic", 0.8),
)


@dataclass
class Durations:
    """Each row's log duration (float32) and whether it ended in churn (an event)."""

    log_time: np.ndarray
    event: np.ndarray

    @classmethod
    def of(cls, time: np.ndarray, event: np.ndarray, *, floor: float) -> Durations:
        """From durations (values under ``floor``, such as 0, are taken as ``floor``)."""
        time = np.asarray(time, dtype=np.float64)
        if np.isnan(time).any() or (time < 0).any():
            raise TrainingError("durations must be present and not negative")
        log_time = np.log(np.maximum(time, floor)).astype(np.float32)
        return cls(log_time, np.asarray(event, dtype=bool))

    def __len__(self) -> int:
        return len(self.log_time)


@dataclass
class AftFit:
    """Trees (``mu`` minus ``intercept``), the chosen distribution and how they were chosen."""

    booster: lgb.Booster
    aft: Aft
    intercept: float
    best_iteration: int
    valid_loss: float
    candidates: list[dict[str, float | str]]


def candidate_list(distribution: str | None, sigma: float | None) -> list[tuple[str, float]]:
    """The (distribution, sigma) pairs to try given what the user fixed."""
    if distribution is not None and sigma is not None:
        return [(distribution, sigma)]
    return [
        (d, s)
        for d, s in CANDIDATES
        if (distribution is None or d == distribution) and (sigma is None or s == sigma)
    ] or [(distribution or "normal", sigma or 1.0)]


def _blocked_gradients(aft: Aft, y: Durations, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grad = np.empty(len(y), dtype=np.float32)
    hess = np.empty(len(y), dtype=np.float32)
    for lo in range(0, len(y), GRADIENT_BLOCK):
        hi = lo + GRADIENT_BLOCK
        grad[lo:hi], hess[lo:hi] = aft.gradients(y.log_time[lo:hi], y.event[lo:hi], mu[lo:hi])
    return grad, hess


def full_loss(aft: Aft, y: Durations, mu: np.ndarray) -> float:
    """Mean negative log-likelihood of log durations, comparable across distributions."""
    events = float(np.count_nonzero(y.event))
    return float((aft.loss(y.log_time, y.event, mu).sum() + events * np.log(aft.sigma)) / len(y))


def boost_candidate(
    train: lgb.Dataset,
    valid: lgb.Dataset,
    y_train: Durations,
    y_valid: Durations,
    params: TrainParams,
    aft: Aft,
    *,
    constraints: list[int] | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> AftFit:
    """Boost with ``aft`` fixed, early-stopping on the validation likelihood."""
    intercept = fit_intercept(aft, y_train.log_time, y_train.event)
    lgb_params = {**params.lightgbm_params(constraints), "objective": "none", "metric": "None"}
    lgb_params.pop("is_unbalance", None)
    booster = lgb.Booster(params=lgb_params, train_set=train)
    booster.add_valid(valid, "valid")

    def objective(preds: np.ndarray, _: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        return _blocked_gradients(aft, y_train, preds + intercept)

    def validation(preds: np.ndarray, _: lgb.Dataset) -> tuple[str, float, bool]:
        return "aft_nll", full_loss(aft, y_valid, preds + intercept), False

    best, best_round = np.inf, 0
    for round_ in range(1, params.max_rounds + 1):
        booster.update(fobj=objective)
        loss = float(booster.eval_valid(validation)[0][2])
        if on_round is not None:
            on_round(round_, loss)
        if loss < best:
            best, best_round = loss, round_
        elif round_ - best_round >= params.early_stopping_rounds:
            break
    trees = lgb.Booster(model_str=booster.model_to_string(num_iteration=best_round))
    return AftFit(trees, aft, intercept, best_round, best, [])


def boost_aft(
    train: lgb.Dataset,
    valid: lgb.Dataset,
    y_train: Durations,
    y_valid: Durations,
    params: TrainParams,
    *,
    candidates: Sequence[tuple[str, float]],
    valid_matrix: Callable[[], np.ndarray],
    constraints: list[int] | None = None,
    on_round: Callable[[str, int, float], None] | None = None,
) -> AftFit:
    """The best candidate on the validation likelihood, its scale re-fitted there on the
    validation rows (``valid_matrix()``: them encoded, in ``y_valid``'s order)."""
    fits = []
    for distribution, sigma in candidates:
        stage = f"{distribution} sigma {sigma:g}"
        report = (lambda r, v, s=stage: on_round(s, r, v)) if on_round else None
        aft = Aft(distribution, sigma)
        fit = boost_candidate(
            train, valid, y_train, y_valid, params, aft, constraints=constraints, on_round=report
        )
        fits.append(fit)
    tried: list[dict[str, float | str]] = [
        {"distribution": f.aft.distribution, "sigma": f.aft.sigma, "valid_nll": f.valid_loss}
        for f in fits
    ]
    best = min(fits, key=lambda f: f.valid_loss)
    mu = np.asarray(best.booster.predict(valid_matrix(), raw_score=True)) + best.intercept
    scale = fit_sigma(best.aft.distribution, y_valid.log_time, y_valid.event, mu)
    best.aft = Aft(best.aft.distribution, scale)
    best.valid_loss = full_loss(best.aft, y_valid, mu)
    best.candidates = tried
    return best
