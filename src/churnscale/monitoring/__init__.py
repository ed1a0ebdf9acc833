"""Drift monitoring: the training reference profile and drift of a window against it."""

from churnscale.features.histograms import Histogram
from churnscale.model.reference import REFERENCE_FILE, DriftReference
from churnscale.monitoring.drift import (
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    WindowProfile,
    compare_matrix,
)
from churnscale.monitoring.reference import ReferenceBuilder, build_reference

__all__ = [
    "REFERENCE_FILE",
    "DriftReference",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "Histogram",
    "ReferenceBuilder",
    "WindowProfile",
    "build_reference",
    "compare_matrix",
]
