"""The model contract: what every kind of model offers, whatever learned it.

A model kind joins churnscale by implementing :class:`ChurnModel` (most do it by subclassing
:class:`~churnscale.model.base.ModelBase`) and adding a loader for its ``model_type`` to
:mod:`churnscale.model.loading`. Evaluation, monitoring, training jobs and export use only this
contract; a consumer that needs more (reasons, compiled trees) asks for it by type:
:class:`ExplainableModel`, or a concrete class through
:func:`~churnscale.model.loading.expect_model`.

Conventions (scikit-learn and River style): uppercase ``X`` is a table of customers (an Arrow
table or record batch in the model's schema), lowercase ``x`` one customer as a dict; a
``matrix`` holds rows already encoded by the model's Preprocessor (tree mode, float64).
``outputs`` names what :meth:`ChurnModel.predict` returns, so a kind whose answer is not one
probability (a survival curve, an uplift and an action, a customer value) says so by name
instead of being special-cased; for a binary churn model it is ``("churn_probability",)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias, runtime_checkable

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from churnscale.features.preprocessor import Preprocessor
    from churnscale.model.reference import DriftReference

#: The one output of a binary churn model: P(churn) of each customer.
CHURN_PROBABILITY = "churn_probability"
#: A table of customers as the models take it.
Table: TypeAlias = pa.RecordBatch | pa.Table


@dataclass(frozen=True)
class Reason:
    """One feature's contribution (log-odds) to a customer's churn score."""

    feature: str
    contribution: float


@runtime_checkable
class ChurnModel(Protocol):
    """The unit that is trained, evaluated, registered, served and scored, of any kind."""

    #: The kind of model, recorded in the bundle's metadata (``lightgbm``, ``mlp``, ...).
    model_type: ClassVar[str]
    #: Raw customer values → the encoded matrix the model reads.
    preprocessor: Preprocessor
    #: Schema, data fingerprint, parameters, metrics, lineage; saved as ``metadata.json``.
    metadata: dict[str, Any]
    #: The training data's drift reference profile (None when the bundle has none).
    reference: DriftReference | None

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of what :meth:`predict` returns, in order (they may depend on the fitted
        model, e.g. a survival model's horizons)."""
        ...

    @property
    def feature_names(self) -> list[str]:
        """Model inputs, in the order of the encoded matrix."""
        ...

    def predict(self, X: Table) -> dict[str, np.ndarray]:
        """Every output of every customer of ``X``, by name (the keys are :attr:`outputs`)."""
        ...

    def outputs_of_matrix(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Every output (:attr:`outputs`) of rows already encoded by :attr:`preprocessor`."""
        ...

    def predict_proba(self, X: Table) -> np.ndarray:
        """Churn probability of every customer of ``X`` (float64, one per row)."""
        ...

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability of rows already encoded by :attr:`preprocessor`."""
        ...

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """Churn probability of one customer (equal to the batch result for the same row)."""
        ...

    def save(self, path: Path) -> Path:
        """Publish the model as a bundle directory at ``path`` (atomic; never overwrites)."""
        ...


@runtime_checkable
class ExplainableModel(ChurnModel, Protocol):
    """A model that can say why: per-feature contributions to each customer's log-odds."""

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (rows × features+1; the last column is the bias)."""
        ...

    def explain(self, X: Table, *, top: int = 3) -> list[list[Reason]]:
        """The ``top`` features pushing each customer's score up or down the most."""
        ...

    def explain_one(self, x: Mapping[str, Any], *, top: int = 3) -> list[Reason]:
        """Reason codes for one customer given as a dict."""
        ...

    def importance(self) -> dict[str, float]:
        """How much the model uses each feature (total gain for trees)."""
        ...
