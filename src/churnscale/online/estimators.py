"""Incremental logistic regressions behind one prequential interface.

Each estimator takes dense rows from the shared Preprocessor and, in ``predict_then_learn``,
scores a block of events with the model as it stands, then learns them. ``RiverLogistic``
does that one event at a time (River ``predict_proba_one`` then ``learn_one``), so its result
does not depend on how events are blocked; the mini-batch estimators score a whole batch
before learning it, so their result depends on the batch boundaries (the learner keeps those
fixed across restarts). All three are plain SGD on the log loss with the same step size.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

LEARNING_RATE = 0.01


class OnlineEstimator(Protocol):
    """What the learner needs from a model."""

    name: str

    def predict_then_learn(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Scores of ``X`` given before learning each event (prequential), then learn them."""
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Churn probabilities of ``X`` with the current model (learns nothing)."""
        ...

    def coefficients(self) -> np.ndarray:
        """Intercept followed by one weight per dense column."""
        ...


class RiverLogistic:
    """River ``LogisticRegression`` learned with ``learn_one`` (one event at a time)."""

    name = "river-learn-one"

    def __init__(self, columns: list[str], *, learning_rate: float = LEARNING_RATE) -> None:
        from river import linear_model, optim

        self.columns = columns
        self.learning_rate = learning_rate
        self.model_: Any = linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate), intercept_lr=learning_rate
        )

    def predict_then_learn(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Score and learn each row in turn."""
        scores = np.empty(X.shape[0], dtype=np.float64)
        columns, model = self.columns, self.model_
        for i, (row, label) in enumerate(zip(X.tolist(), y.tolist(), strict=True)):
            x = dict(zip(columns, row, strict=True))
            scores[i] = model.predict_proba_one(x)[True]
            model.learn_one(x, bool(label))
        return scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Score each row (no learning)."""
        model, columns = self.model_, self.columns
        return np.array(
            [model.predict_proba_one(dict(zip(columns, r, strict=True)))[True] for r in X.tolist()]
        )

    def coefficients(self) -> np.ndarray:
        """Intercept and weights in column order."""
        weights = self.model_.weights
        return np.array([self.model_.intercept] + [weights.get(c, 0.0) for c in self.columns])


class RiverMiniBatch(RiverLogistic):
    """River ``LogisticRegression`` learned with ``learn_many`` (one step per batch)."""

    name = "river-learn-many"

    def predict_then_learn(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Score the batch, then take one gradient step on it."""
        import pandas as pd

        frame = pd.DataFrame(X, columns=self.columns)
        scores = self._proba_frame(frame)
        self.model_.learn_many(frame, pd.Series(y.astype(bool)))
        return scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Score a batch (no learning)."""
        import pandas as pd

        return self._proba_frame(pd.DataFrame(X, columns=self.columns))

    def _proba_frame(self, frame: Any) -> np.ndarray:
        proba: Any = self.model_.predict_proba_many(frame)
        return np.asarray(proba[True], dtype=np.float64)


class SGDMiniBatch:
    """scikit-learn ``SGDClassifier.partial_fit`` on each batch (per-sample SGD in Cython)."""

    name = "sklearn-partial-fit"

    def __init__(self, columns: list[str], *, learning_rate: float = LEARNING_RATE) -> None:
        from sklearn.linear_model import SGDClassifier

        self.columns = columns
        self.learning_rate = learning_rate
        self.model_: Any = SGDClassifier(
            loss="log_loss",
            penalty=None,
            learning_rate="constant",
            eta0=learning_rate,
            shuffle=False,
            random_state=0,
        )
        self.fitted_ = False

    def predict_then_learn(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Score the batch, then learn its rows in order."""
        X64 = np.ascontiguousarray(X, dtype=np.float64)
        scores = self.predict_proba(X64)
        self.model_.partial_fit(X64, y.astype(np.int64), classes=np.array([0, 1]))
        self.fitted_ = True
        return scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Score a batch (0.5 before the first batch, as River does)."""
        if not self.fitted_:
            return np.full(X.shape[0], 0.5)
        return np.asarray(self.model_.predict_proba(X)[:, 1], dtype=np.float64)

    def coefficients(self) -> np.ndarray:
        """Intercept and weights in column order."""
        if not self.fitted_:
            return np.zeros(len(self.columns) + 1)
        return np.concatenate([self.model_.intercept_, self.model_.coef_[0]])


def make_estimator(columns: list[str], *, batch: int, mini_batch: str = "sklearn") -> Any:
    """``learn_one`` for ``batch`` 1, else the chosen mini-batch estimator."""
    if batch <= 1:
        return RiverLogistic(columns)
    if mini_batch == "river":
        return RiverMiniBatch(columns)
    return SGDMiniBatch(columns)
