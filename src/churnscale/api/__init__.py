"""The Python API: train, load, predict, explain, evaluate, ingest, score and generate from a
notebook or a script, on pandas, polars or Arrow tables or on any source the CLI reads.

Each function is what its CLI command runs (the commands are these functions with flags), so
a model trained here is the one ``churnscale train`` would make from the same data.
"""

from churnscale.api.datasets import Generated, generate, ingest
from churnscale.api.models import ChurnModel, load_model
from churnscale.api.reports import EvaluationReport
from churnscale.api.scoring import score
from churnscale.api.survival import train_survival
from churnscale.api.training import TrainOptions, train
from churnscale.api.uplift import train_uplift

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
