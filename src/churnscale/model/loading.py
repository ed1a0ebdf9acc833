"""The one way to a model: a bundle directory or a registry reference, of any model type.

``load_model("path/to/bundle", settings)`` loads a verified bundle directory;
``load_model("churn@champion", settings)`` or ``"churn/3"`` resolves the reference in the
registry (download, manifest check, verified cache; the cached copy when the registry is down)
and loads that bundle, whose version then reads ``churn/3``. :func:`load_bundle` picks the
class by the ``model_type`` the bundle's metadata declares; the MLP's module (and torch) is
imported only for an MLP bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from churnscale.exceptions import IncompatibleModelError, IntegrityError, ModelNotFoundError
from churnscale.extras import require
from churnscale.model.base import ModelBase
from churnscale.model.bundle import declared_model_type
from churnscale.model.contract import ChurnModel
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.survival import SurvivalModel
from churnscale.model.uplift import UpliftModel

if TYPE_CHECKING:
    from churnscale.config import Settings

M = TypeVar("M", bound=ModelBase)


def _load_mlp(path: Path) -> ChurnModel:
    require("neural", feature=f"the MLP bundle {path}")
    from churnscale.model.mlp import MlpModel  # torch, only for MLP bundles

    return MlpModel.load(path)


#: The loader of each model type a bundle may declare.
LOADERS: dict[str, Callable[[Path], ChurnModel]] = {
    LightGBMModel.model_type: LightGBMModel.load,
    "mlp": _load_mlp,
    SurvivalModel.model_type: SurvivalModel.load,
    UpliftModel.model_type: UpliftModel.load,
}


def resolve_bundle(reference: str, settings: Settings, *, working_dir: bool = True) -> Path:
    """The verified local bundle directory ``reference`` names (a path or a registry reference).

    With ``working_dir=False`` (the service) a bare name (no separator, no leading ``.`` or
    ``~``) is always a registry name, even when the working directory holds a folder of that
    name: only an absolute path or one written as a path (``./model``) is a directory.
    """
    from churnscale.registry.references import looks_like_path

    path = Path(reference).expanduser()
    if path.is_absolute() or (path.is_dir() and (working_dir or looks_like_path(reference))):
        return path  # a missing absolute path fails in load_bundle with ModelNotFoundError
    from churnscale.registry import Registry  # MLflow is imported only for registry references

    return Registry(settings).resolve(reference, allow_paths=False)


def load_bundle(path: Path, settings: Settings | None = None) -> ChurnModel:
    """The model in the bundle directory ``path``, verified; with ``settings``, one from the
    registry cache (``<home>/bundles/NAME/VERSION``) carries its registered version."""
    if not path.is_dir():
        raise ModelNotFoundError(str(path), "no bundle directory at this path")
    model_type = declared_model_type(path)
    loader = LOADERS.get(model_type)
    if loader is None:
        known = ", ".join(sorted(LOADERS))
        raise IntegrityError(str(path), f"unknown model type {model_type!r} (known: {known})")
    model = loader(path)
    if settings is not None:
        cache = (settings.home / "bundles").expanduser().resolve()
        resolved = path.resolve()
        if resolved.parent.parent == cache and resolved.name.isdigit():
            model.metadata.setdefault("version", f"{resolved.parent.name}/{resolved.name}")
    return model


def load_model(reference: str, settings: Settings) -> ChurnModel:
    """The model ``reference`` names: a bundle directory or a registry reference, verified."""
    return load_bundle(resolve_bundle(reference, settings), settings)


def model_version(model: ChurnModel) -> str:
    """A registered version when the registry set one, else the bundle's manifest digest."""
    version = model.metadata.get("version")
    if version is not None:
        return str(version)
    digest = str(model.metadata.get("manifest_sha256", "unknown"))
    return f"sha256:{digest[:12]}"


def expect_model(model: ChurnModel, kind: type[M], *, reference: str, purpose: str) -> M:
    """``model`` as a ``kind``, for a consumer that needs more than the contract (compiled
    trees, continued training); else :class:`IncompatibleModelError` naming both types."""
    if isinstance(model, kind):
        return model
    raise IncompatibleModelError(
        reference, f"{purpose} takes a {kind.model_type} model; this one is {model.model_type}"
    )
