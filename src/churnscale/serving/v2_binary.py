"""The binary data extension of the Open Inference Protocol v2 (Triton's, over HTTP).

A request may carry its tensors as raw bytes after its JSON document: the header
``Inference-Header-Content-Length`` gives the document's length, and each input with a
``binary_data_size`` parameter takes that many bytes, in input order (tritonclient.http sends
this by default). The answer is binary too when asked (``parameters.binary_data_output`` on the
request, or ``binary_data`` on a requested output): its JSON document, then each output (the
probabilities; value and expected loss when the request has a value) as little-endian FP64,
with ``Inference-Header-Content-Length`` set. Without the header and without
``binary_data_size`` parameters a request is plain JSON tensors, answered in JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from churnscale.serving.errors import InvalidInputError
from churnscale.serving.v2_tensors import (
    Tensor,
    V2Request,
    from_json,
    from_raw,
    parse_request,
)

HEADER_LENGTH = "inference-header-content-length"
BINARY = "application/octet-stream"


def header_length(value: str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` value (None when absent)."""
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInputError(
            f"expected a length in bytes, got {value!r}", field=HEADER_LENGTH, location="header"
        )
    return int(value)


def read_request(
    body: bytes, length: int | None, *, max_rows: int
) -> tuple[V2Request, list[Tensor]]:
    """The request document and its input columns, from JSON data or the bytes after it (a
    tensor declaring more than ``max_rows`` rows is refused before it is decoded)."""
    if length is not None and length > len(body):
        raise InvalidInputError(
            f"{length} is longer than the {len(body)}-byte body",
            field=HEADER_LENGTH,
            location="header",
        )
    cut = len(body) if length is None else length
    request = parse_request(body[:cut])
    binary = memoryview(body)[cut:]
    tensors: list[Tensor] = []
    offset = 0
    for tensor in request.inputs:
        size = _binary_size(tensor.name, tensor.parameters)
        if size is None:
            if tensor.data is None:
                raise InvalidInputError(
                    "has neither data nor a binary_data_size parameter", field=tensor.name
                )
            tensors.append(from_json(tensor))
            continue
        if offset + size > len(binary):
            raise InvalidInputError(
                f"binary_data_size {size} runs past the body's {len(binary)} binary bytes",
                field=tensor.name,
            )
        raw = binary[offset : offset + size]
        tensors.append(from_raw(tensor.name, tensor.datatype, tensor.shape, raw, max_rows=max_rows))
        offset += size
    if offset != len(binary):
        raise InvalidInputError(
            f"{len(binary) - offset} bytes after the last binary input", field="body"
        )
    return request, tensors


def _binary_size(name: str, parameters: dict[str, Any] | None) -> int | None:
    size = (parameters or {}).get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(f"binary_data_size must be a byte count, got {size!r}", field=name)
    return size


def wants_binary(request: V2Request) -> bool:
    """Whether the answer goes in binary (the first requested output that says, else the
    request's ``binary_data_output``); every output goes the same way."""
    default = bool((request.parameters or {}).get("binary_data_output", False))
    for output in request.outputs or []:
        binary = (output.parameters or {}).get("binary_data")
        if binary is not None:
            return bool(binary)
    return default


def binary_answer(
    request: V2Request, *, name: str, version: str, columns: dict[str, np.ndarray]
) -> tuple[bytes, int]:
    """The binary answer of FP64 output ``columns``: its body and its JSON document's length."""
    raws = [np.ascontiguousarray(c, dtype="<f8").tobytes() for c in columns.values()]
    document: dict[str, Any] = {"model_name": name, "model_version": version}
    if request.id is not None:
        document["id"] = request.id
    document["outputs"] = [
        {
            "name": output,
            "datatype": "FP64",
            "shape": [len(column)],
            "parameters": {"binary_data_size": len(raw)},
        }
        for (output, column), raw in zip(columns.items(), raws, strict=True)
    ]
    header = orjson.dumps(document)
    return header + b"".join(raws), len(header)
