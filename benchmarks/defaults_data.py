"""Generated churn-like datasets of many shapes, for choosing defaults on data nobody tuned for.

Two families, each with its own size, width, numeric/categorical mix, class balance and signal
strength: ``clusters`` (scikit-learn's ``make_classification``: classes as Gaussian clusters,
informative, redundant and useless columns, label noise) and ``additive`` (a logistic model of
non-linear one-column effects, pairwise interactions and category effects). Categorical
columns are binned numeric ones with their levels shuffled, so their order tells nothing.
None of these is one of the shared public datasets, and no setting was fitted to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import make_classification


@dataclass(frozen=True)
class Shape:
    """One generated dataset."""

    name: str
    family: str
    rows: int
    numeric: int
    categorical: int
    positive_rate: float
    signal: float  # class separation (clusters) or logit scale (additive)
    levels: int = 8
    missing: float = 0.05


SHAPES = [
    Shape("c2k", "clusters", 2_000, 10, 3, 0.20, 0.8),
    Shape("a3k", "additive", 3_000, 6, 10, 0.40, 1.0, levels=40),
    Shape("c5k", "clusters", 5_000, 30, 0, 0.10, 1.0),
    Shape("a10k", "additive", 10_000, 8, 8, 0.30, 0.6),
    Shape("c20k", "clusters", 20_000, 40, 5, 0.05, 0.7),
    Shape("a50k", "additive", 50_000, 15, 4, 0.25, 1.5),
    Shape("c100k", "clusters", 100_000, 20, 10, 0.15, 0.5),
    Shape("a200k", "additive", 200_000, 10, 2, 0.20, 0.8),
]


def _categorical(values: np.ndarray, levels: int, rng: np.random.Generator) -> np.ndarray:
    edges = np.quantile(values, np.linspace(0, 1, levels + 1)[1:-1])
    bins = np.searchsorted(edges, values)
    return rng.permutation(levels)[bins].astype(np.float64)


def _clusters(shape: Shape, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray]:
    width = shape.numeric + shape.categorical
    x, y = make_classification(
        n_samples=shape.rows,
        n_features=width,
        n_informative=max(2, width // 3),
        n_redundant=max(0, width // 6),
        n_clusters_per_class=3,
        weights=[1.0 - shape.positive_rate],
        flip_y=0.03,
        class_sep=shape.signal,
        random_state=seed,
    )
    return x, y


def _additive(shape: Shape, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    width = shape.numeric + shape.categorical
    x = rng.normal(size=(shape.rows, width))
    logit = np.zeros(shape.rows)
    for j in range(width):
        kind = j % 4
        column = x[:, j]
        effect = [np.tanh(2 * column), column**2 - 1, np.sin(2 * column), (column > 0.5) * 1.0]
        logit += rng.normal(scale=0.6) * effect[kind]
    for _ in range(width // 2):
        a, b = rng.choice(width, size=2, replace=False)
        logit += rng.normal(scale=0.5) * x[:, a] * x[:, b]
    noisy = shape.signal * 3.0 * logit / max(logit.std(), 1e-9) + rng.logistic(size=shape.rows)
    return x, (noisy > np.quantile(noisy, 1.0 - shape.positive_rate)).astype(np.int64)


def generate(shape: Shape, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features (float64, NaN for missing, categorical columns as level codes), labels, and the
    indices of the categorical columns."""
    rng = np.random.default_rng(seed)
    if shape.family == "clusters":
        x, y = _clusters(shape, rng, seed)
    else:
        x, y = _additive(shape, rng)
    categorical = list(range(shape.numeric, shape.numeric + shape.categorical))
    for j in categorical:
        x[:, j] = _categorical(x[:, j], shape.levels, rng)
    numeric = list(range(shape.numeric))
    for j in numeric[::3]:
        x[rng.random(shape.rows) < shape.missing, j] = np.nan
    return x, y.astype(np.int8), categorical
