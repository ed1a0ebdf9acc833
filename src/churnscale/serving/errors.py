"""Errors a client causes with a request, and the one mapping of any error to an HTTP answer.

A body is ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` for 422 (the shape FastAPI
documents) and ``{"detail": "..."}`` for the other statuses; Open Inference v2 routes answer
``{"error": "..."}``. :func:`error_answer` is the only place an exception becomes a status and
a body: the fast path, the gateway, the FastAPI handler and the protocol adapters all call it.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, NamedTuple

import orjson

from churnscale.exceptions import ChurnscaleError, DeadlineExceededError, OverloadedError

log = logging.getLogger("churnscale.serving")


class RequestError(ChurnscaleError, ValueError):
    """A request the service refuses; ``http_status`` says how."""

    kind = "invalid_request"

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"detail": self.message}


class InvalidInputError(RequestError):
    """A value, field or document that does not match what the model accepts (422)."""

    http_status = 422
    kind = "value_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        row: int | None = None,
        location: str = "body",
    ) -> None:
        where = f"{field}: " if field else ""
        at = f"row {row}: " if row is not None else ""
        super().__init__(at + where + message, field=field)
        self.row = row
        self.reason = message
        self.location = location

    def body(self) -> dict[str, Any]:
        """FastAPI's validation-error shape, naming where (body or query), the row and field."""
        loc: list[str | int] = [self.location]
        if self.row is not None:
            loc.append(self.row)
        if self.field and self.field != "body":
            loc.append(self.field)
        return {"detail": [{"loc": loc, "msg": self.message, "type": self.kind}]}


class PayloadTooLargeError(RequestError):
    """A body over the byte limit, or a batch over the row limit (413)."""

    http_status = 413
    kind = "too_large"


class UnsupportedMediaTypeError(RequestError):
    """A body in a format the route does not read (415)."""

    http_status = 415
    kind = "unsupported_media_type"

    def __init__(self, received: str, *, accepted: tuple[str, ...]) -> None:
        super().__init__(
            f"unsupported content type {received!r}; send one of: {', '.join(accepted)}",
            field="content-type",
        )


class RequestTimeoutError(RequestError):
    """A client that did not send its request head or body in time (408)."""

    http_status = 408
    kind = "timeout"

    def __init__(self, part: str, seconds: float) -> None:
        super().__init__(f"request {part} not received within {seconds:g} s", field=part)


class BuffersFullError(RequestError):
    """The server holds as many bytes of unfinished request bodies as it may (503)."""

    http_status = 503
    kind = "overloaded"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the server holds its limit of {limit} bytes of unfinished request bodies; "
            "retry later",
            field="body",
        )


class ModelNotReadyError(RequestError):
    """The model is not loaded and warmed yet (503)."""

    http_status = 503
    kind = "not_ready"


class ErrorAnswer(NamedTuple):
    """An error as the service answers it: status, JSON body, extra headers, metrics kind, and
    the message alone (for transports without a JSON body: gRPC)."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    kind: str
    message: str


Style = Literal["v1", "v2"]


def error_answer(exc: BaseException, *, style: Style = "v1") -> ErrorAnswer:
    """The status, body and headers that answer ``exc``.

    A :class:`RequestError` answers its own status and body (422 names the field); 503
    (saturated, with ``Retry-After``) and 504 (past the deadline) say so; any other
    :class:`ChurnscaleError` answers its 4xx status, or 500 when it is no client's doing (logged,
    answered without detail, like any other exception: a bug). ``style``
    ``"v2"`` gives Open Inference v2's ``{"error": ...}`` body.

    >>> error_answer(InvalidInputError("not a number", field="tenure")).body
    b'{"detail":[{"loc":["body","tenure"],"msg":"tenure: not a number","type":"value_error"}]}'
    >>> error_answer(OverloadedError(in_flight=1, queued=0, retry_after=2)).headers
    [(b'retry-after', b'2')]
    """
    headers: list[tuple[bytes, bytes]] = []
    message = exc.message if isinstance(exc, ChurnscaleError) else "internal server error"
    if isinstance(exc, RequestError):
        status, detail, kind = exc.http_status, exc.body(), exc.kind
        if isinstance(exc, BuffersFullError):
            headers.append((b"retry-after", b"1"))
    elif isinstance(exc, OverloadedError):
        status, detail, kind = 503, {"detail": message}, "overloaded"
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    elif isinstance(exc, DeadlineExceededError):
        status, detail, kind = 504, {"detail": message}, "deadline"
    elif isinstance(exc, ChurnscaleError) and exc.http_status < 500:
        status, detail, kind = exc.http_status, {"detail": message}, "value_error"
    else:
        log.error("request failed", exc_info=exc)
        message = "internal server error"
        status, detail, kind = 500, {"detail": message}, "server"
    if style == "v2":
        detail = {"error": message}
    return ErrorAnswer(status, orjson.dumps(detail), headers, kind, message)
