"""The model layer: what every model kind is, how a bundle is saved and loaded, and prediction.

Training, evaluation, monitoring, scoring, serving and export all stand on this package;
nothing here imports them. :class:`ChurnModel` is the contract every kind implements
(:class:`LightGBMModel` here; the MLP in :mod:`churnscale.model.mlp`, imported only with
torch); :func:`load_model` and :func:`load_bundle` are the one way to a saved model.
"""

from churnscale.model.base import ModelBase
from churnscale.model.contract import CHURN_PROBABILITY, ChurnModel, ExplainableModel, Reason
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import expect_model, load_bundle, load_model
from churnscale.model.survival import SurvivalModel

__all__ = [
    "CHURN_PROBABILITY",
    "ChurnModel",
    "ExplainableModel",
    "LightGBMModel",
    "ModelBase",
    "Reason",
    "SurvivalModel",
    "expect_model",
    "load_bundle",
    "load_model",
]
