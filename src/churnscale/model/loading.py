"""Where the service and batch scoring get their model: one function for paths and the registry.

``load_model("path/to/bundle", settings)`` loads a verified bundle directory;
``load_model("churn@champion", settings)`` or ``"churn/3"`` resolves the reference in the
registry (download, manifest check, verified cache; the cached copy when the registry is down)
and loads that bundle, whose version then reads ``churn/3``.
"""

from __future__ import annotations

from pathlib import Path

from churnscale.config import Settings
from churnscale.model.lightgbm import LightGBMModel


def resolve_bundle(reference: str, settings: Settings) -> Path:
    """The verified local bundle directory ``reference`` names (a path or a registry reference)."""
    path = Path(reference).expanduser()
    if path.is_dir() or path.is_absolute():
        return path  # a missing absolute path fails in LightGBMModel.load with ModelNotFoundError
    from churnscale.registry import Registry  # MLflow is imported only for registry references

    return Registry(settings).resolve(reference, allow_paths=False)


def load_bundle(path: Path, settings: Settings) -> LightGBMModel:
    """Load a bundle; one from the registry cache carries its registered version."""
    model = LightGBMModel.load(path)
    cache = (settings.home / "bundles").expanduser().resolve()
    resolved = path.resolve()
    if resolved.parent.parent == cache and resolved.name.isdigit():
        model.metadata.setdefault("version", f"{resolved.parent.name}/{resolved.name}")
    return model


def load_model(reference: str, settings: Settings) -> LightGBMModel:
    """The model ``reference`` names: a bundle directory or a registry reference, verified."""
    return load_bundle(resolve_bundle(reference, settings), settings)
