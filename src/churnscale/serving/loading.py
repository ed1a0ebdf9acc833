"""Where the service and batch scoring get their model: one function, so the registry plugs in.

``load_model("path/to/bundle", settings)`` loads a verified bundle directory. Registry
references (``churn@champion``, ``churn/3``) need :mod:`churnscale.registry`; once it exists the
only change is the marked line in :func:`load_model`.
"""

from __future__ import annotations

from pathlib import Path

from churnscale.config import Settings
from churnscale.exceptions import ModelNotFoundError
from churnscale.model import ChurnModel


def load_model(reference: str, settings: Settings) -> ChurnModel:
    """The model ``reference`` names: an existing bundle directory (checksums verified)."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return ChurnModel.load(path)
    # Registry hook: `path = Registry(settings).resolve(reference)` goes here.
    raise ModelNotFoundError(
        reference,
        "not a bundle directory; registry references (name@alias, name/version) need the registry",
    )
