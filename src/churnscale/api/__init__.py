"""The Python API: train, load, predict, explain, evaluate, ingest, score and generate from a
notebook or a script, on pandas, polars or Arrow tables or on any source the CLI reads.

Each function is what its CLI command runs (the commands are these functions with flags), so
a model trained here is the one ``churnscale train`` would make from the same data.

Each name is imported from its module when first used, so ``churnscale ingest`` and
``generate`` load the data modules only (not LightGBM, scikit-learn, SciPy or matplotlib,
whose import costs more CPU than ingesting a 100 MiB CSV).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnscale.api.datasets import Generated, generate, ingest
    from churnscale.api.models import ChurnModel, load_model
    from churnscale.api.reports import EvaluationReport
    from churnscale.api.scoring import score
    from churnscale.api.survival import train_survival
    from churnscale.api.training import TrainOptions, train
    from churnscale.api.uplift import train_uplift

#: Where each public name lives.
_HOMES = {
    "ChurnModel": "models",
    "EvaluationReport": "reports",
    "Generated": "datasets",
    "TrainOptions": "training",
    "generate": "datasets",
    "ingest": "datasets",
    "load_model": "models",
    "score": "scoring",
    "train": "training",
    "train_survival": "survival",
    "train_uplift": "uplift",
}

__all__ = [
    "ChurnModel",
    "EvaluationReport",
    "Generated",
    "TrainOptions",
    "generate",
    "ingest",
    "load_model",
    "score",
    "train",
    "train_survival",
    "train_uplift",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'churnscale.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"churnscale.api.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
