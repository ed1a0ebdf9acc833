"""churnscale: customer churn prediction at any scale.

>>> import churnscale
>>> churnscale.train, churnscale.load_model  # doctest: +ELLIPSIS
(<function train at ...>, <function load_model at ...>)

Importing the package is light (no LightGBM, MLflow, matplotlib or scikit-learn): the API's
names are imported when first used, so ``churnscale serve`` and a minimal install start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from churnscale.exceptions import ChurnscaleError, InputTypeError
from churnscale.version import __version__

if TYPE_CHECKING:
    from churnscale import features, sklearn
    from churnscale.api import (
        ChurnModel,
        EvaluationReport,
        Generated,
        generate,
        ingest,
        load_model,
        score,
        train,
        train_survival,
        train_uplift,
    )

#: Subpackages reachable as attributes (``churnscale.features.build``, ``churnscale.sklearn``).
_MODULES = ("features", "sklearn")

__all__ = [
    "ChurnModel",
    "ChurnscaleError",
    "EvaluationReport",
    "Generated",
    "InputTypeError",
    "__version__",
    "features",
    "generate",
    "ingest",
    "load_model",
    "score",
    "sklearn",
    "train",
    "train_survival",
    "train_uplift",
]


#: Names imported from ``churnscale.api`` when first used: the rest of ``__all__``.
_API = frozenset(__all__) - {"ChurnscaleError", "InputTypeError", "__version__", *_MODULES}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("churnscale.api"), name)
    if name in _MODULES:
        return importlib.import_module(f"churnscale.{name}")
    raise AttributeError(f"module 'churnscale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
