"""Where the service, batch scoring and every command get their model: one function.

``load_model(reference, settings)`` takes a bundle directory or a registry reference
(``churn@champion``, ``churn/3``, ``churn``), resolves it through the registry (download,
manifest check, verified cache) and loads the verified bundle.
"""

from __future__ import annotations

from pathlib import Path

from churnscale.config import Settings
from churnscale.model import ChurnModel


def resolve_bundle(reference: str | Path, settings: Settings) -> Path:
    """The verified local bundle directory ``reference`` names (a path or a registry reference)."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    from churnscale.registry import Registry

    return Registry(settings).resolve(str(reference))


def load_model(reference: str | Path, settings: Settings) -> ChurnModel:
    """The model ``reference`` names, loaded from its verified bundle."""
    return ChurnModel.load(resolve_bundle(reference, settings))
