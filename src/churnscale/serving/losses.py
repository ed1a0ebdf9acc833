"""Value at risk in the service: a request's value and its expected loss beside the probability.

A customer may carry a value (the field ``CHURNSCALE_VALUE_FIELD``, ``value`` by default): the
answer then also holds ``value`` and ``expected_loss`` = ``churn_probability × value`` (for a
survival model, ``expected_loss_H`` = ``churn_within_H × value`` at each horizon under
``outputs``; :mod:`churnscale.value.risk`). A request without one costs one dictionary lookup.

The field is validated with the rest of the customer (:class:`~churnscale.serving.customer.
CustomerDecoder`: a number >= 0 or null, else a 422 naming it). Naming a numeric feature of the
model uses that feature as the value (checked here, 422 naming it when negative); naming any
other column of the schema, or an uplift model, turns value off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.model.contract import CHURN_PROBABILITY as PROBABILITY
from churnscale.serving.errors import InvalidInputError
from churnscale.value.risk import (
    EXPECTED_LOSS,
    VALUE,
    bad_value,
    checked_value,
    expected_losses,
    first_bad,
    loss_name,
)


def value_field_of(schema: Schema, setting: str, *, uplift: bool) -> str | None:
    """The request field holding a customer's value for a model of ``schema``, or None (off)."""
    if not setting or uplift:
        return None
    if setting not in schema.names:
        return setting
    feature = any(c.name == setting for c in schema.features)
    return setting if feature and schema.role_of(setting) is Role.NUMERIC else None


def value_of(x: Mapping[str, Any], field: str, *, row: int | None = None) -> float | None:
    """The value one validated customer carries (None when absent or null)."""
    value = x.get(field)
    if value is None:
        return None
    try:
        return checked_value(value, field=field)
    except ValueError as exc:
        raise InvalidInputError(_reason(exc, field), field=field, row=row) from None


def add_losses(out: dict[str, Any], value: float) -> None:
    """Add ``value`` and the expected losses to an answer (its survival ``outputs`` too)."""
    out[VALUE] = value
    out[EXPECTED_LOSS] = out["churn_probability"] * value
    outputs: dict[str, float] | None = out.get("outputs")
    if outputs is not None:
        for name, probability in list(outputs.items()):
            loss = loss_name(name)
            if loss is not None:
                outputs[loss] = probability * value


def batch_answers(
    ids: Sequence[Any],
    outputs: Mapping[str, np.ndarray],
    values: Sequence[float | None] | None,
) -> list[dict[str, Any]]:
    """A batch answer's predictions: each row as ``POST /v1/predict`` answers it (a survival
    model's other outputs under ``outputs``), with value and expected losses where a row has a
    value."""
    answers = [
        {"customer_id": None if i is None else str(i), "churn_probability": p}
        for i, p in zip(ids, outputs[PROBABILITY].tolist(), strict=True)
    ]
    curves = [name for name in outputs if name != PROBABILITY]
    if curves:
        columns = zip(*(outputs[name].tolist() for name in curves), strict=True)
        for answer, row in zip(answers, columns, strict=True):
            answer["outputs"] = dict(zip(curves, row, strict=True))
    if values is not None:
        for answer, value in zip(answers, values, strict=True):
            if value is not None:
                add_losses(answer, value)
    return answers


def output_lists(
    outputs: Mapping[str, np.ndarray], values: Sequence[float | None] | None
) -> dict[str, Any]:
    """A SageMaker / MLflow answer: ``predictions``, a survival model's other outputs as lists
    under ``outputs``, and ``value`` and expected-loss lists (None where a row has no value)
    when some row has one; a binary model's answer without values is ``predictions`` alone."""
    answer: dict[str, Any] = {"predictions": outputs[PROBABILITY].tolist()}
    curves = {name: column.tolist() for name, column in outputs.items() if name != PROBABILITY}
    if curves:
        answer["outputs"] = curves
    if values is None or all(v is None for v in values):
        return answer
    value = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    losses = {name: _nulls(loss) for name, loss in expected_losses(outputs, value).items()}
    answer[VALUE] = list(values)
    answer[EXPECTED_LOSS] = losses.pop(EXPECTED_LOSS)
    if losses:
        answer["outputs"].update(losses)
    return answer


def _nulls(column: np.ndarray) -> list[float | None]:
    """A column as JSON values, NaN (a missing value) as None."""
    return [None if v != v else v for v in column.tolist()]


def with_value_column(schema: Schema, field: str | None, names: Sequence[str]) -> Schema:
    """``schema`` plus the value column, when a batch table has one the schema does not."""
    if field is None or field not in names or field in schema.names:
        return schema
    return Schema((*schema.columns, ColumnSpec(field, Role.NUMERIC)), metadata=schema.metadata)


def table_values(typed: pa.RecordBatch, field: str | None) -> list[float | None] | None:
    """The values of a typed batch table (None when it has no value column); a negative one
    is a 422 naming the field and its row."""
    if field is None or field not in typed.schema.names:
        return None
    column = typed.column(field).cast(pa.float64())
    values = np.asarray(column.fill_null(np.nan).to_numpy(zero_copy_only=False))
    row = first_bad(values)
    if row is not None:
        error = bad_value(float(values[row]), field=field)
        raise InvalidInputError(_reason(error, field), field=field, row=row + 1)
    return [None if np.isnan(v) else float(v) for v in values.tolist()]


def _reason(exc: Exception, field: str) -> str:
    return str(exc).removeprefix(f"column {field!r}: ")
