"""Open Inference Protocol v2 tensors as the service's customers, whatever the transport.

JSON tensors, the binary data extension and gRPC each turn their input tensors into
:class:`Tensor` values: one flat list of Python values per feature column, ``None`` where a
value is missing. A value is missing when it is ``null`` (JSON), ``NaN`` in a floating-point
tensor (what numpy, pandas and tritonclient write for a missing number) or an empty element of
a BYTES tensor (the binary encodings have no null). :func:`customer_rows` then validates each
row exactly as ``POST /v1/predict`` validates a customer, so every protocol scores alike.

Outputs, all FP64: ``churn_probability``, then the model's other outputs (a survival model's
``survival_H``, ``churn_within_H``, ``restricted_mean_H``; ``PredictionService.curves``); a
request that carries the value field's tensor (``CHURNSCALE_VALUE_FIELD``, ``value`` by default;
FP64, NaN = missing) also gets ``value``, ``expected_loss`` = ``churn_probability × value`` and a
survival model's ``expected_loss_H`` = ``churn_within_H × value`` (:func:`output_names`,
:func:`output_columns`).

Raw tensor bytes (the binary extension, gRPC's ``raw_input_contents``) are little-endian, row
after row; a BYTES tensor is its elements one after another, each a 4-byte little-endian length
and then that many bytes (UTF-8 text here).
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import msgspec
import numpy as np

from churnscale.data.schema import Role
from churnscale.serving.errors import InvalidInputError, PayloadTooLargeError
from churnscale.serving.ids import MAX_ID_LENGTH
from churnscale.serving.uplift_outputs import DECISION_OUTPUTS, decision_columns, decisions_of_rows
from churnscale.value.risk import EXPECTED_LOSS, VALUE, expected_losses, loss_names

if TYPE_CHECKING:
    from churnscale.serving.service import PredictionService

OUTPUT = "churn_probability"
#: The datatype ModelMetadata declares for each feature role (any numeric datatype is accepted).
V2_TYPES = {Role.NUMERIC: "FP64", Role.BOOLEAN: "BOOL", Role.CATEGORICAL: "BYTES"}
#: numpy dtype of each fixed-size datatype, little-endian as the protocol sends it.
DTYPES = {
    "BOOL": "?",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
_LENGTH = struct.Struct("<I")


class V2Input(msgspec.Struct, forbid_unknown_fields=False):
    """One input tensor of a request: ``data`` in JSON, or ``binary_data_size`` bytes after it."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class V2Output(msgspec.Struct, forbid_unknown_fields=False):
    """A requested output (``parameters.binary_data`` asks for it in binary)."""

    name: str
    parameters: dict[str, Any] | None = None


class V2Request(msgspec.Struct, forbid_unknown_fields=False):
    """An inference request's JSON document (the header of a binary one)."""

    inputs: list[V2Input]
    outputs: list[V2Output] | None = None
    id: Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None = None
    parameters: dict[str, Any] | None = None


class Tensor(NamedTuple):
    """One input column: its name and one Python value per row (None = missing)."""

    name: str
    values: list[Any]


def parse_request(document: bytes) -> V2Request:
    """The request document; ``NaN`` tokens (tritonclient's missing floats) are read as NaN."""
    try:
        return msgspec.json.decode(document, type=V2Request)
    except msgspec.ValidationError as exc:
        raise InvalidInputError(str(exc), field="body") from None
    except msgspec.DecodeError:
        pass  # perhaps NaN tokens, which strict JSON (and msgspec) refuses

    def constant(token: str) -> float:
        if token != "NaN":
            raise InvalidInputError(f"{token} is not a valid value", field="body")
        return math.nan

    try:
        parsed = json.loads(document, parse_constant=constant)
        return msgspec.convert(parsed, V2Request)
    except InvalidInputError:
        raise
    except (ValueError, RecursionError, msgspec.ValidationError) as exc:
        raise InvalidInputError(f"malformed JSON: {exc}", field="body") from None


def check_shape(name: str, shape: Sequence[int], count: int) -> None:
    """Refuse a shape other than ``[n]`` or ``[n, 1]``, or one that ``count`` values do not fill."""
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InvalidInputError(f"shape {list(shape)} is not [n] or [n, 1]", field=name)
    expected = math.prod(shape) if shape else count
    if expected != count:
        raise InvalidInputError(f"shape {list(shape)} does not match {count} values", field=name)


def declared_rows(name: str, shape: Sequence[int], max_rows: int) -> int:
    """The rows a tensor's shape declares, refused (413) over ``max_rows`` before anything of
    it is decoded, so a small body cannot make millions of Python values."""
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InvalidInputError(f"shape {list(shape)} is not [n] or [n, 1]", field=name)
    rows = math.prod(shape) if shape else max_rows  # no shape: only the limit bounds it
    if rows > max_rows:
        raise PayloadTooLargeError(
            f"tensor of {rows} rows is over the limit of {max_rows}", field=name
        )
    return rows


def from_json(tensor: V2Input) -> Tensor:
    """A JSON tensor's column (nested ``[[v], …]`` flattened)."""
    data = tensor.data or []
    if data and isinstance(data[0], list):
        data = [v for part in data for v in (part if isinstance(part, list) else [part])]
    check_shape(tensor.name, tensor.shape, len(data))
    if tensor.datatype == "BYTES":
        return Tensor(tensor.name, [None if v == "" else v for v in data])
    return Tensor(tensor.name, [None if isinstance(v, float) and v != v else v for v in data])


def from_raw(
    name: str, datatype: str, shape: Sequence[int], raw: bytes | memoryview, *, max_rows: int
) -> Tensor:
    """A column from raw little-endian tensor bytes (BYTES: length-prefixed elements); a shape
    over ``max_rows`` is refused before decoding."""
    rows = declared_rows(name, shape, max_rows)
    if datatype == "BYTES":
        return from_elements(name, shape, bytes_elements(name, raw, most=rows))
    dtype = DTYPES.get(datatype)
    if dtype is None:
        expected = ", ".join([*DTYPES, "BYTES"])
        raise InvalidInputError(f"datatype {datatype!r} is not one of {expected}", field=name)
    size = np.dtype(dtype).itemsize
    if len(raw) % size:
        raise InvalidInputError(
            f"{len(raw)} bytes is not a whole number of {datatype} values", field=name
        )
    return from_array(name, shape, np.frombuffer(raw, dtype=dtype))


def from_array(name: str, shape: Sequence[int], array: np.ndarray) -> Tensor:
    """A column from a numeric or boolean array (NaN = missing)."""
    check_shape(name, shape, array.size)
    if array.dtype.kind == "f":
        values = array.astype(np.float64).tolist()
        return Tensor(name, [None if v != v else v for v in values])
    return Tensor(name, array.tolist())


def from_elements(name: str, shape: Sequence[int], elements: Sequence[bytes]) -> Tensor:
    """A column from BYTES elements: UTF-8 text, an empty element missing."""
    check_shape(name, shape, len(elements))
    try:
        return Tensor(name, [e.decode("utf-8") if e else None for e in elements])
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"a BYTES element is not UTF-8 text: {exc}", field=name) from None


def bytes_elements(name: str, raw: bytes | memoryview, *, most: int) -> list[bytes]:
    """The elements of a serialized BYTES tensor (4-byte little-endian length, then the bytes);
    more than ``most`` of them is refused as soon as it is seen."""
    data = bytes(raw)
    elements: list[bytes] = []
    offset, end = 0, len(data)
    while offset < end:
        if len(elements) == most:
            raise InvalidInputError(
                f"BYTES tensor holds more than the {most} elements its shape declares", field=name
            )
        if offset + 4 > end:
            raise InvalidInputError("BYTES tensor ends inside a length prefix", field=name)
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(
                f"BYTES element of {length} bytes runs past the tensor's end", field=name
            )
        elements.append(data[offset : offset + length])
        offset += length
    return elements


def customer_rows(service: PredictionService, tensors: Sequence[Tensor]) -> list[dict[str, Any]]:
    """One validated customer per row of the columns (422 naming the row and field)."""
    columns = {t.name: t.values for t in tensors}
    if len(columns) < len(tensors):
        names = [t.name for t in tensors]
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"input tensors named twice: {twice}", field=twice[0])
    sizes = {len(v) for v in columns.values()}
    if len(sizes) > 1:
        raise InvalidInputError(f"input tensors differ in length: {sorted(sizes)}", field="inputs")
    n = sizes.pop() if sizes else 0
    service.check_rows(n)
    names = list(columns)
    convert = service.decoder.convert
    return [
        convert(dict(zip(names, values, strict=True)), row=i)
        for i, values in enumerate(zip(*columns.values(), strict=True))
    ]


def output_names(
    service: PredictionService, requested: Sequence[str], tensors: Sequence[Tensor]
) -> list[str]:
    """The outputs to answer: those ``requested``, else every one the request has (the
    model's outputs; ``value`` and the expected losses when it carries the value field's
    tensor). Any other requested name is a 422."""
    field = service.value_field
    available = [OUTPUT, *service.curves]
    if field is not None and any(t.name == field for t in tensors):
        available += [VALUE, *loss_names(available)]
    if service.decisions is not None:  # an uplift model: uplift, p_treated, action
        available += DECISION_OUTPUTS
    for name in requested:
        if name not in available:
            hint = f" ({VALUE} and {EXPECTED_LOSS} with a {field!r} input)" if field else ""
            raise InvalidInputError(
                f"unknown output; this model answers {', '.join(available)}{hint}",
                field="outputs",
            )
    return list(dict.fromkeys(requested)) or available


def output_columns(
    service: PredictionService,
    names: Sequence[str],
    rows: Sequence[dict[str, Any]],
    outputs: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each named output's FP64 column for validated ``rows``, from the model's ``outputs``
    (value and expected losses NaN where a row has no value; an uplift model's decisions);
    the model's outputs alone cost nothing more."""
    if all(name in outputs for name in names):
        return {name: outputs[name] for name in names}
    columns = dict(outputs)
    if set(names) - set(outputs) - set(DECISION_OUTPUTS):  # value and expected losses
        values = service.row_values(rows) or [None] * len(rows)
        value = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        columns.update({VALUE: value, **expected_losses(outputs, value)})
    decided = decisions_of_rows(service, rows) if set(DECISION_OUTPUTS) & set(names) else None
    if decided is not None:
        columns.update(decision_columns(decided))
    return {name: columns[name] for name in names}


def json_data(column: np.ndarray) -> list[float | None]:
    """A column as JSON tensor data (NaN, which JSON lacks, as null)."""
    return [None if v != v else v for v in column.tolist()]


#: Batches up to this many rows are scored in the event loop (a thread hop costs more).
INLINE_ROWS = 16


async def score_rows(
    service: PredictionService, rows: list[dict[str, Any]]
) -> dict[str, np.ndarray]:
    """The model's outputs of validated rows, by name: in the loop when few, else in a worker
    thread."""
    if len(rows) <= INLINE_ROWS:
        return service.outputs_of_rows(rows)
    return await asyncio.to_thread(service.outputs_of_rows, rows)


def model_metadata(service: PredictionService, name: str) -> dict[str, Any]:
    """ModelMetadata: one input tensor per feature column; the model's outputs (the
    probability, a survival model's curve), each FP64 ``[-1]``."""
    inputs = [
        {"name": c.name, "datatype": V2_TYPES.get(c.role, "BYTES"), "shape": [-1]}
        for c in service.schema.features
    ]
    return {
        "name": name,
        "versions": [service.version],
        "platform": f"lightgbm_{service.predictor.kind}",
        "inputs": inputs,
        "outputs": [
            {"name": name, "datatype": "FP64", "shape": [-1]}
            for name in (
                OUTPUT,
                *service.curves,
                *(DECISION_OUTPUTS if service.decisions is not None else ()),
            )
        ],
    }
