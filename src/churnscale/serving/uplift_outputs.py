"""An uplift model's answers on the batch routes and protocols, as ``/v1/predict`` gives them.

``POST /v1/predict`` answers an uplift model's ``uplift``, ``p_treated`` and ``action`` (the
deploy-time policy's, :class:`~churnscale.model.decisions.UpliftDecisions`). The other routes
answer the same numbers: ``/v1/predict/batch`` in each row (:func:`add_to_answers`),
``/invocations`` as lists beside ``predictions`` (:func:`decision_lists`), and v2 (HTTP JSON,
binary, gRPC) as three more FP64 output tensors, ``action`` 1.0 = treat, 0.0 = control
(:func:`decision_columns`). Whether a service has them is decided when its model is loaded
(``service.decisions``); a churn model's answers are unchanged and cost one attribute test.
The rows are encoded a second time for the decisions (the routes' probability path is the
churn models' own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from churnscale.model.decisions import NO_ACTION, TREAT
from churnscale.model.uplift import P_TREATED, UPLIFT

if TYPE_CHECKING:
    from churnscale.serving.service import PredictionService

ACTION = "action"
#: The outputs an uplift model adds, in order.
DECISION_OUTPUTS = (UPLIFT, P_TREATED, ACTION)


def decisions_of_rows(
    service: PredictionService, rows: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray] | None:
    """Uplift, P(outcome | treated) and treat (bool) of validated customers (None: not an
    uplift model)."""
    if service.decisions is None:
        return None
    width = len(service.model.feature_names)
    matrix = np.stack([service.encode(x) for x in rows]) if rows else np.empty((0, width))
    return service.decisions.decide_matrix(matrix)


def decisions_of_table(
    service: PredictionService, table: pa.Table, *, source: str
) -> dict[str, np.ndarray] | None:
    """:func:`decisions_of_rows` for a raw table (CSV or Arrow)."""
    if service.decisions is None:
        return None
    typed = service.typed_table(table, source=source)
    return service.decisions.decide_matrix(service.model.preprocessor.transform(typed))


def _actions(decided: Mapping[str, np.ndarray]) -> list[str]:
    return [TREAT if treat else NO_ACTION for treat in decided["treat"].tolist()]


def add_to_answers(answers: list[dict[str, Any]], decided: Mapping[str, np.ndarray] | None) -> None:
    """Each batch answer's uplift, P(outcome | treated) and action (as ``/v1/predict``)."""
    if decided is None:
        return
    columns = zip(
        decided[UPLIFT].tolist(), decided[P_TREATED].tolist(), _actions(decided), strict=True
    )
    for answer, (uplift, treated, action) in zip(answers, columns, strict=True):
        answer.update({UPLIFT: uplift, P_TREATED: treated, ACTION: action})


def decision_lists(decided: Mapping[str, np.ndarray] | None) -> dict[str, list[Any]]:
    """``uplift``, ``p_treated`` and ``action`` lists beside ``predictions`` (none for a churn
    model)."""
    if decided is None:
        return {}
    return {
        UPLIFT: decided[UPLIFT].tolist(),
        P_TREATED: decided[P_TREATED].tolist(),
        ACTION: _actions(decided),
    }


def decision_columns(decided: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The v2 output tensors: uplift, p_treated and action (FP64, 1.0 = treat)."""
    return {
        UPLIFT: np.asarray(decided[UPLIFT], dtype=np.float64),
        P_TREATED: np.asarray(decided[P_TREATED], dtype=np.float64),
        ACTION: np.asarray(decided["treat"], dtype=np.float64),
    }
