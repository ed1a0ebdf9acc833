"""Target-leakage screening: how well each feature alone separates churners.

A feature that alone separates churners almost perfectly usually was recorded after the churn
event or derived from it. Numeric features are ranked by their own value; missing values are
placed below and then above every value and the better of the two AUCs is kept, so that
missingness that gives the label away is caught too. Categorical features (strings, objects, or
integer codes named in ``categorical``) are replaced by their churn rate computed out of fold
(two folds: each half is encoded with the rates of the other half), so a unique id, whose
categories never recur, scores 0.5 instead of a perfect 1.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnscale.evaluation.validation import FloatArray, check_labels, check_number
from churnscale.exceptions import EvaluationError

#: A single feature at or above this AUC is reported as a likely leak.
FEATURE_THRESHOLD = 0.98
#: A model at or above this AUC on held-out data is reported as implausibly perfect.
MODEL_THRESHOLD = 0.995
#: Name :class:`LeakageWarning` uses for a warning about the whole model.
MODEL = "(model)"


@dataclass(frozen=True)
class LeakageWarning:
    """A feature (or, as :data:`MODEL`, the whole model) that separates churners too well."""

    feature: str
    auc: float
    message: str


def _separation(y: np.ndarray, score: FloatArray) -> float:
    """AUC of ``score`` with the direction that separates better: ``max(auc, 1 - auc)``."""
    if np.ptp(score) == 0.0:
        return 0.5
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def _numeric_auc(y: np.ndarray, values: FloatArray) -> float:
    missing = np.isnan(values)
    if missing.all():
        return 0.5
    if not missing.any():
        return _separation(y, values)
    low, high = np.nanmin(values) - 1.0, np.nanmax(values) + 1.0
    return max(
        _separation(y, np.where(missing, low, values)),
        _separation(y, np.where(missing, high, values)),
    )


def _out_of_fold_rates(y: np.ndarray, codes: np.ndarray, *, seed: int) -> FloatArray:
    """Each row's category churn rate, learned on the other of two random halves."""
    fold = np.random.default_rng(seed).permutation(y.size) % 2
    encoded = np.empty(y.size, dtype=np.float64)
    size = int(codes.max()) + 1
    for part in (0, 1):
        learn, apply = fold != part, fold == part
        counts = np.bincount(codes[learn], minlength=size)
        churners = np.bincount(codes[learn], weights=y[learn], minlength=size)
        prior = float(y[learn].mean()) if learn.any() else 0.5
        rates = (churners + prior) / (counts + 1.0)  # one pseudo-row at the prior
        encoded[apply] = rates[codes[apply]]
    return encoded


def _category_codes(values: np.ndarray) -> np.ndarray:
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes < 0, codes.max() + 1, codes)  # missing is a category of its own


def _as_numeric(values: np.ndarray) -> FloatArray | None:
    if values.dtype.kind in "mM":
        return np.where(np.isnat(values), np.nan, values.astype(np.int64)).astype(np.float64)
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    return None


def feature_auc(y: np.ndarray, values: Any, *, categorical: bool = False, seed: int = 0) -> float:
    """Single-feature AUC of one column against 0/1 labels ``y`` (already checked)."""
    array = np.asarray(values)
    numeric = None if categorical else _as_numeric(array)
    if numeric is not None:
        return _numeric_auc(y, numeric)
    return _separation(y, _out_of_fold_rates(y, _category_codes(array), seed=seed))


def single_feature_aucs(
    columns: Mapping[str, Any],
    y: Any,
    *,
    categorical: Collection[str] = (),
    seed: int = 0,
) -> dict[str, float]:
    """AUC of each feature alone, ``max(auc, 1 - auc)``, highest first.

    ``categorical`` names integer-coded columns to treat as categories; string and object columns
    always are. ``seed`` fixes the two-fold split used for categorical columns.
    """
    labels = check_labels(y, name="y")
    unknown = sorted(set(categorical) - set(columns))
    if unknown:
        raise EvaluationError(
            "categorical", expected="names of given columns", received=", ".join(unknown)
        )
    aucs: dict[str, float] = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if array.shape != labels.shape:
            raise EvaluationError(
                f"columns[{name!r}]",
                expected=f"{labels.size} values (one per label)",
                received=f"shape {array.shape}",
            )
        aucs[name] = feature_auc(labels, array, categorical=name in categorical, seed=seed)
    return dict(sorted(aucs.items(), key=lambda item: -item[1]))


def leakage_warnings(
    aucs: Mapping[str, float],
    *,
    model_auc: float | None = None,
    threshold: float = FEATURE_THRESHOLD,
    model_threshold: float = MODEL_THRESHOLD,
) -> list[LeakageWarning]:
    """Warnings for features whose AUC alone reaches ``threshold`` and for a too-perfect model."""
    threshold = check_number(threshold, name="threshold", low=0.5, high=1.0)
    model_threshold = check_number(model_threshold, name="model_threshold", low=0.5, high=1.0)
    found = [
        LeakageWarning(
            feature=name,
            auc=float(auc),
            message=(
                f"feature {name!r} alone separates churners with AUC {auc:.4f} "
                f"(>= {threshold:g}); check that it is known before the churn date "
                "and is not derived from the label"
            ),
        )
        for name, auc in sorted(aucs.items(), key=lambda item: -item[1])
        if auc >= threshold
    ]
    if model_auc is not None and model_auc >= model_threshold:
        found.insert(
            0,
            LeakageWarning(
                feature=MODEL,
                auc=float(model_auc),
                message=(
                    f"the model reaches AUC {model_auc:.4f} (>= {model_threshold:g}) on held-out "
                    "data, which is implausibly perfect for churn; look for a leaking feature"
                ),
            ),
        )
    return found
