"""Request bodies: read with a byte limit (never buffered past it), parsed by content type.

The limit is checked against ``Content-Length`` before anything is read, and again on every
chunk of a streamed body, so a client cannot make the service hold more than the limit.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
from starlette.types import Message, Receive

from churnscale.serving.decoded import arrow_bound, csv_bound, expanded_bytes
from churnscale.serving.decoded import too_large as decoded_too_large
from churnscale.serving.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

JSON = "application/json"
CSV = "text/csv"
ARROW = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
BATCH_TYPES = (JSON, CSV, ARROW, ARROW_FILE)


def too_large(limit: int) -> PayloadTooLargeError:
    """The 413 error for a body over ``limit`` bytes."""
    return PayloadTooLargeError(f"request body is over the limit of {limit} bytes", field="body")


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` header's value, or None (chunked or absent)."""
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise InvalidInputError("not an integer", field="content-length") from None
    return None


def media_type(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's media type, lower-case, without parameters ('' when absent)."""
    for key, value in headers:
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return ""


async def read_body(receive: Receive, headers: list[tuple[bytes, bytes]], limit: int) -> bytes:
    """The whole body, or :class:`PayloadTooLargeError` as soon as it passes ``limit``."""
    length = declared_length(headers)
    if length is not None and length > limit:
        raise too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInputError("client disconnected before sending the body", field="body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`PayloadTooLargeError` once the body passes ``limit``."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return wrapped


def read_table(body: bytes, kind: str, *, max_decoded: int) -> pa.Table:
    """A CSV (all columns as text) or Arrow IPC body as a table, refused with 413 when it
    would decode to more than ``max_decoded`` bytes (sized before decoding: see
    :mod:`churnscale.serving.decoded`)."""
    try:
        if kind == CSV:
            _within(csv_bound(body), max_decoded, "the CSV body")
            names = pacsv.open_csv(io.BytesIO(body)).schema.names  # the first block only
            options = pacsv.ReadOptions(block_size=max(len(body), 1 << 16))
            text = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
            return pacsv.read_csv(io.BytesIO(body), read_options=options, convert_options=text)
        if kind in (ARROW, ARROW_FILE):
            buffer = pa.py_buffer(body)
            size = arrow_bound(buffer, file=kind == ARROW_FILE)
            _within(size, max_decoded, "the Arrow body")
            reader = ipc.open_stream(buffer) if kind == ARROW else ipc.open_file(buffer)
            table = reader.read_all()
            _within(size + expanded_bytes(table), max_decoded, "the Arrow body, expanded,")
            return table
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(f"unreadable {kind} body: {exc}", field="body") from None
    raise UnsupportedMediaTypeError(kind, accepted=BATCH_TYPES)


def _within(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise decoded_too_large(size, limit, what)
