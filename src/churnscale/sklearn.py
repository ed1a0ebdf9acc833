"""``ChurnClassifier``: churnscale's model as a scikit-learn estimator.

It works in ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``. ``fit`` stores ``X`` and
``y`` as a dataset and trains on it as ``churnscale train`` does (the Preprocessor fitted in
one pass, LightGBM with early stopping on a hashed slice of the rows, then refitted on every
row with the rounds found), so mixed-type frames (numbers, categories, booleans, dates, missing
values) go in as they are, from pandas, polars or pyarrow, as do numeric arrays (columns
``x0``, ``x1``, …). ``rounds=N`` boosts exactly N rounds on every row instead (no early
stopping: what tiny data needs).

It passes ``sklearn.utils.estimator_checks`` (``tests/test_sklearn.py``, with
``rounds`` set: the checks fit 20-row data) but for one check, and a few are not run, as they
do not apply to a binary classifier of mixed-type frames:

- ``check_class_weight_classifiers`` fails, expectedly: ``class_weight`` is ``"none"`` or
  ``"balanced"`` (LightGBM's ``is_unbalance``), not a dict of weights per class;
- the sample-weight checks are not run: ``fit`` takes no ``sample_weight``
  (``class_weight="balanced"`` is its weighting);
- the multiclass checks are not run: the estimator declares ``multi_class = False`` and
  refuses more than 2 classes with "Only binary classification is supported"
  (``check_classifier_not_supporting_multiclass`` passes);
- ``check_estimators_nan_inf`` is not run: missing values are data here (``allow_nan``);
- ``check_array_api_input`` is skipped by scikit-learn unless ``SCIPY_ARRAY_API=1``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from churnscale.api.inputs import is_frame, to_arrow
from churnscale.api.models import ChurnModel

#: The label column of the dataset ``fit`` stores (0/1: ``y == classes_[1]``).
TARGET = "__churnscale_target__"


class ChurnClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A binary churn classifier: churnscale's LightGBM pipeline behind scikit-learn's API.

    Hyperparameters are ``TrainParams`` fields (``learning_rate``, ``num_leaves``,
    ``min_child_samples``, ``max_rounds``, ``early_stopping_rounds``, ``class_weight``),
    ``valid_fraction`` (the early-stopping hold-out), ``rounds`` (fixed rounds, no early
    stopping), ``random_state`` and ``threads`` (LightGBM's; 0 = all cores).

    >>> import churnscale
    >>> from sklearn.model_selection import cross_val_score
    >>> from churnscale.sklearn import ChurnClassifier
    >>> data = churnscale.generate(rows=2_000, seed=4).to_pandas()
    >>> X, y = data.drop(columns=["customer_id", "churned"]), data["churned"]
    >>> scores = cross_val_score(ChurnClassifier(max_rounds=60), X, y, cv=2, scoring="roc_auc")
    >>> bool(scores.min() > 0.7)
    True
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 10,
        max_rounds: int = 2_000,
        early_stopping_rounds: int = 100,
        class_weight: Literal["none", "balanced"] = "none",
        valid_fraction: float = 0.2,
        rounds: int | None = None,
        random_state: int = 0,
        threads: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.class_weight = class_weight
        self.valid_fraction = valid_fraction
        self.rounds = rounds
        self.random_state = random_state
        self.threads = threads

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    # ---- fitting -----------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Self:
        """Train on ``X`` (a frame or a numeric array) and binary labels ``y``."""
        table, labels = self._validated(X, y)
        self.classes_ = np.unique(labels)
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported: ChurnClassifier needs 2 classes, "
                f"y has {len(self.classes_)} class{'es' if len(self.classes_) > 1 else ''} "
                f"({self.classes_.tolist()[:5]})"
            )
        positive = pa.array((labels == self.classes_[1]).astype(np.int8))
        self.model_ = ChurnModel(self._train(table.append_column(TARGET, positive)))
        return self

    def _validated(self, X: Any, y: Any) -> tuple[pa.Table, np.ndarray]:
        if y is None:
            validate_data(self, X, y)  # raises: a classifier requires y
        if is_frame(X):
            validate_data(self, X, skip_check_array=True, reset=True)
            labels = column_or_1d(np.asarray(y), warn=True)
            if len(labels) != X.shape[0]:
                raise ValueError(f"y has {len(labels)} labels for {X.shape[0]} rows of X")
            table = to_arrow(X)
        else:
            array, labels = validate_data(
                self, X, y, reset=True, ensure_all_finite="allow-nan", dtype="numeric"
            )
            table = _columns(array)
        check_classification_targets(labels)
        return table, labels

    def _train(self, table: pa.Table) -> Any:
        import pyarrow.parquet as pq

        from churnscale.data.schema import SchemaHints
        from churnscale.data.store import ingest

        with tempfile.TemporaryDirectory(prefix="churnscale-fit-") as scratch:
            source = Path(scratch) / "fit.parquet"
            pq.write_table(table.replace_schema_metadata(None), source)
            dataset = Path(scratch) / "dataset"
            ingest(str(source), dataset, hints=SchemaHints(target=TARGET), max_bad_fraction=0.0)
            return self._boost(dataset)

    def _boost(self, dataset: Path) -> Any:
        from churnscale.training.local import TrainParams, train_local
        from churnscale.training.plan import SplitSpec
        from churnscale.training.refit import Evaluated, refit_all_rows, refit_local

        params = TrainParams(
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            max_rounds=self.max_rounds,
            early_stopping_rounds=self.early_stopping_rounds,
            class_weight=self.class_weight,
            seed=self.random_state,
            threads=self.threads,
        )
        split = SplitSpec(valid_fraction=self.valid_fraction, seed=self.random_state)
        if self.rounds is not None:
            model, _ = refit_local(dataset, rounds=self.rounds, split=split, params=params)
            return model
        evaluated = train_local(dataset, split=split, params=params)
        model, _ = refit_all_rows([Evaluated.of(evaluated)], dataset, split=split, params=params)
        return model

    # ---- prediction --------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """P(each class) of every row: columns ``classes_``."""
        check_is_fitted(self)
        if is_frame(X):
            validate_data(self, X, skip_check_array=True, reset=False)
            table = to_arrow(X)
        else:
            array = validate_data(
                self, X, reset=False, ensure_all_finite="allow-nan", dtype="numeric"
            )
            table = _columns(array)
        churn = self.model_.predict_proba(table)
        return np.column_stack([1.0 - churn, churn])

    def predict(self, X: Any) -> np.ndarray:
        """The likelier class of every row (churn when P(churn) ≥ 0.5)."""
        churn = self.predict_proba(X)[:, 1]
        return self.classes_[(churn >= 0.5).astype(int)]  # type: ignore[no-any-return]


def _columns(array: np.ndarray) -> pa.Table:
    """A numeric array as a table of float columns ``x0``, ``x1``, …"""
    return pa.table(
        {f"x{i}": np.asarray(array[:, i], dtype=np.float64) for i in range(array.shape[1])}
    )


__all__ = ["ChurnClassifier"]
