"""How the ``--time-budget`` preset chooses what it serves from its searched candidates.

The top ``TOP`` candidates by CV AUC on a random half of the out-of-fold rows, averaged with
equal weights, replace the defaults only when they beat them on the *other* half by ``MARGIN``
and by ``SIGNIFICANCE`` bootstrap standard errors (:func:`choose`); AUCs are per-fold means
(:func:`fold_auc`). :func:`select` is the greedy rule the preset no longer uses, kept for the
comparison in ``benchmarks/budget_rules.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from churnscale.training.parts import binary_auc

#: Candidates averaged (equal weights) when the blend beats the defaults.
TOP = 3
#: Out-of-fold AUC by which the blend must beat the defaults to be served instead of them.
MARGIN = 0.001
#: ... and by this many bootstrap standard errors of that gain (one-sided, ~98%).
SIGNIFICANCE = 2.0
BOOTSTRAPS = 200
BOOTSTRAP_ROWS = 20_000


class Scored(Protocol):
    """A searched candidate as the choice sees it: its AUC and out-of-fold raw scores."""

    @property
    def auc(self) -> float: ...
    @property
    def oof(self) -> np.ndarray: ...


def selection_half(y: np.ndarray, seed: int) -> np.ndarray:
    """True for the out-of-fold rows that rank the candidates (a random half); the other half
    judges the blend against the defaults, untouched by the search's choices."""
    return np.random.default_rng(seed).random(y.size) < 0.5


def fold_auc(y: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> float:
    """Mean of the per-fold AUCs of out-of-fold ``scores`` (``folds``: each row's CV fold).

    Not the AUC of the pooled scores: that mixes K models' score scales and penalises a
    setting whose fold models are calibrated differently (measured: slow-learning defaults
    with 70-100 rounds on Telco lost 0.015-0.025 pooled AUC to blends that were no better
    on the test folds)."""
    return float(np.mean([binary_auc(y[folds == k], scores[folds == k]) for k in np.unique(folds)]))


def judged_gain(
    y: np.ndarray, blend: np.ndarray, defaults: np.ndarray, folds: np.ndarray
) -> tuple[float, float]:
    """Per-fold AUC of ``blend`` minus the defaults' on these rows, and the bootstrap standard
    error of that difference (on at most ``BOOTSTRAP_ROWS`` rows, scaled to all of them)."""
    gain = fold_auc(y, blend, folds) - fold_auc(y, defaults, folds)
    rng = np.random.default_rng(0)
    m = min(y.size, BOOTSTRAP_ROWS)
    diffs = []
    for _ in range(BOOTSTRAPS):
        i = rng.integers(0, y.size, m)
        diffs.append(fold_auc(y[i], blend[i], folds[i]) - fold_auc(y[i], defaults[i], folds[i]))
    return gain, float(np.std(diffs)) * (m / max(y.size, 1)) ** 0.5


def choose(
    candidates: Sequence[Scored],
    y: np.ndarray,
    half: np.ndarray,
    folds: np.ndarray | None = None,
    *,
    top: int = TOP,
    margin: float = MARGIN,
) -> list[int]:
    """The ``top`` candidates by their AUC on ``half`` (what the search maximised), averaged
    with equal weights, if that blend beats the defaults (candidate 0) on the *other* rows by
    ``margin`` and by ``SIGNIFICANCE`` bootstrap standard errors; else the defaults alone.

    Judged on rows that no choice looked at, and only on a clear gain: the best of many
    candidates scored on the same rows looks better there than it is (measured: +0.015 to
    +0.04 CV AUC over the defaults on 2-3k rows, yet worse than them on the test folds), and
    a gain within the noise of 1-2k judging rows (±0.01) served worse models as often as
    better. No weights are fitted to the out-of-fold scores (they would fit their noise)."""
    ranked = sorted(range(len(candidates)), key=lambda i: -candidates[i].auc)[:top]
    if len(ranked) < 2:
        return [0]
    blend = np.mean([candidates[i].oof for i in ranked], axis=0)
    judge = ~half
    folds = np.zeros(y.size, dtype=int) if folds is None else folds
    gain, se = judged_gain(y[judge], blend[judge], candidates[0].oof[judge], folds[judge])
    return ranked if gain >= max(margin, SIGNIFICANCE * se) else [0]


def select(candidates: Sequence[Scored], y: np.ndarray, steps: int = 25) -> dict[int, int]:
    """Greedy forward selection with replacement (Caruana et al. 2004): candidate index →
    times picked. Not used by the preset (it fits out-of-fold noise, docs/benchmarks.md);
    kept for the comparison in the exploratory benchmark."""
    picked: dict[int, int] = {}
    total = np.zeros_like(candidates[0].oof)
    best_so_far = -1.0
    for step in range(1, steps + 1):
        aucs = [binary_auc(y, (total + c.oof) / step) for c in candidates]
        choice = int(np.argmax(aucs))
        if aucs[choice] < best_so_far - 1e-9 and step > 1:
            break
        best_so_far = max(best_so_far, aucs[choice])
        picked[choice] = picked.get(choice, 0) + 1
        total = total + candidates[choice].oof
    return picked
