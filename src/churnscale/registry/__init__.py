"""Tracking and the model registry on MLflow: runs, registered bundles, aliases, a verified cache.

MLflow itself is imported only when a registry is first used.
"""

from churnscale.registry.cache import BundleCache
from churnscale.registry.mlflow_registry import Registry
from churnscale.registry.references import ModelRef, parse_reference
from churnscale.registry.tracking import TrackedRun
from churnscale.registry.versions import ModelVersion

__all__ = ["BundleCache", "ModelRef", "ModelVersion", "Registry", "TrackedRun", "parse_reference"]
