"""Drift between a :class:`DriftReference` and a current window: per feature and for the scores.

A feature drifts when its PSI reaches the threshold (``Settings.drift_psi_threshold``, 0.2 by
default). KS (numeric, on present values) or chi-squared (categorical) p-values are reported
beside it; with thousands of rows they flag even tiny shifts, so they do not decide alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from churnscale.features.histograms import Histogram
from churnscale.model.reference import DriftReference
from churnscale.monitoring.statistics import chi_squared, ks_binned, proportions, psi

if TYPE_CHECKING:
    from churnscale.config import Settings


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature (or the score distribution) counts as drifted."""

    psi: float = 0.2
    p_value: float = 0.01

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        """The thresholds configured in ``settings``."""
        return cls(psi=settings.drift_psi_threshold, p_value=settings.drift_p_value)


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift figures and both distributions over the same bins."""

    name: str
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    drifted: bool
    significant: bool
    bins: list[str]
    reference: list[float]
    current: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Drift of every feature and of the predicted probability, against the reference."""

    reference_rows: int
    current_rows: int
    thresholds: DriftThresholds
    features: list[FeatureDrift]
    prediction: FeatureDrift
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> list[FeatureDrift]:
        """Drifting features, the largest PSI first."""
        return sorted((f for f in self.features if f.drifted), key=lambda f: -f.psi)

    def summary(self) -> str:
        """One line naming each drifting feature with its PSI."""
        named = ", ".join(f"{f.name} (PSI {f.psi:.3f})" for f in self.drifted)
        scores = f"prediction PSI {self.prediction.psi:.3f}"
        if self.prediction.drifted:
            scores += " (drifted)"
        if not named:
            return f"no feature drifted (PSI < {self.thresholds.psi:g}); {scores}"
        return f"{len(self.drifted)} drifting feature(s): {named}; {scores}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (what ``--json`` prints and the service returns)."""
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "thresholds": asdict(self.thresholds),
            "drifted_features": [{"name": f.name, "psi": f.psi} for f in self.drifted],
            "prediction": self.prediction.to_dict(),
            "features": [f.to_dict() for f in self.features],
            **self.extra,
        }


class WindowProfile:
    """Counts of current rows in the reference's bins (streaming; memory = the bins)."""

    def __init__(self, reference: DriftReference) -> None:
        self.reference = reference
        self.features = [h.empty_like() for h in reference.features]
        self.prediction = reference.prediction.empty_like()

    @property
    def rows(self) -> int:
        """Rows counted so far."""
        return self.prediction.rows

    def add(self, matrix: np.ndarray, probabilities: np.ndarray) -> None:
        """Fold in tree-mode rows and their probabilities."""
        for i, histogram in enumerate(self.features):
            histogram.add(matrix[:, i])
        self.prediction.add(probabilities)

    def psi(self) -> dict[str, float]:
        """PSI of every feature and of the prediction (cheap: no statistical test)."""
        pairs = zip(self.reference.features, self.features, strict=True)
        values = {r.name: psi(r.counts, c.counts) for r, c in pairs}
        values[self.prediction.name] = psi(self.reference.prediction.counts, self.prediction.counts)
        return values

    def report(self, thresholds: DriftThresholds, **extra: Any) -> DriftReport:
        """Compare the counts so far with the reference."""
        pairs = zip(self.reference.features, self.features, strict=True)
        return DriftReport(
            reference_rows=self.reference.rows,
            current_rows=self.rows,
            thresholds=thresholds,
            features=[feature_drift(r, c, thresholds) for r, c in pairs],
            prediction=feature_drift(self.reference.prediction, self.prediction, thresholds),
            extra=dict(extra),
        )


def feature_drift(
    reference: Histogram, current: Histogram, thresholds: DriftThresholds
) -> FeatureDrift:
    """PSI and the test that suits the feature's kind, between two histograms of one feature."""
    value = psi(reference.counts, current.counts)
    if reference.kind == "numeric":  # KS on the present values: the missing bin is left out
        test, (statistic, p_value) = "ks", ks_binned(reference.counts[:-1], current.counts[:-1])
    else:
        test, (statistic, p_value) = "chi2", chi_squared(reference.counts, current.counts)
    return FeatureDrift(
        name=reference.name,
        kind=reference.kind,
        psi=round(value, 6),
        test=test,
        statistic=round(statistic, 6),
        p_value=p_value,
        drifted=value >= thresholds.psi,
        significant=p_value < thresholds.p_value,
        bins=reference.labels(),
        reference=[round(float(p), 6) for p in proportions(reference.counts)],
        current=[round(float(p), 6) for p in proportions(current.counts)],
    )


def compare_matrix(
    reference: DriftReference,
    matrix: np.ndarray,
    probabilities: np.ndarray,
    thresholds: DriftThresholds,
) -> DriftReport:
    """Drift of tree-mode rows (and their scores) held in memory against ``reference``."""
    profile = WindowProfile(reference)
    profile.add(matrix, probabilities)
    return profile.report(thresholds)
