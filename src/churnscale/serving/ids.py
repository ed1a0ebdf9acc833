"""The one rule for customer ids on every route and protocol: a string of at most
:data:`MAX_ID_LENGTH` characters, or a 64-bit signed integer.

The same rule in the three forms the service validates with: a msgspec type (the customer
decoder: ``/v1/predict``, JSON batches, v2 tensors, MLflow/SageMaker records, events), a pydantic
type (``/v1/feedback``, ``/v1/arms``) and :func:`check_id_column` (CSV and Arrow batches). A
longer id is a 422 naming the field, so no log keeps an id of unbounded size.

>>> check_id_column(pa.array(["C1", "x" * 257]), field="customer_id")
Traceback (most recent call last):
...
churnscale.serving.errors.InvalidInputError: row 2: customer_id: longer than 256 characters (257)
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BeforeValidator, WithJsonSchema

from churnscale.serving.errors import InvalidInputError

MAX_ID_LENGTH = 256
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: A customer id as the msgspec decoders take it (``None``: no id).
MsgspecId = (
    Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]
    | Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
    | None
)


def _pydantic_id(value: object) -> object:
    """The rule for pydantic (one error naming the field, not one per union member)."""
    if isinstance(value, str) and 1 <= len(value) <= MAX_ID_LENGTH:
        return value
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    raise ValueError(f"expected a string of 1 to {MAX_ID_LENGTH} characters or a 64-bit integer")


#: A customer id as the pydantic models take it (required, not empty).
PydanticId = Annotated[
    str | int,
    BeforeValidator(_pydantic_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
                {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
            ]
        }
    ),
]


def check_id_column(column: pa.Array | pa.ChunkedArray, *, field: str) -> None:
    """Refuse (422 naming ``field`` and the first row) an id column that breaks the rule."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        lengths = pc.utf8_length(column)
        too_long = pc.greater(lengths, MAX_ID_LENGTH)
        if pc.any(too_long).as_py():
            row = pc.index(too_long, True).as_py()
            longest = pc.max(lengths).as_py()
            message = f"longer than {MAX_ID_LENGTH} characters ({longest})"
            raise InvalidInputError(message, field=field, row=row + 1)
    elif pa.types.is_unsigned_integer(kind) and len(column):
        largest = pc.max(column).as_py()
        if largest is not None and largest > INT64_MAX:
            raise InvalidInputError(f"not a 64-bit integer: {largest}", field=field)
