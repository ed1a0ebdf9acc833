"""Errors a client causes with a request; the service answers each with its ``http_status``.

A body is ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` for 422 (the shape FastAPI
documents) and ``{"detail": "..."}`` for the other statuses.
"""

from __future__ import annotations

from typing import Any

from churnscale.exceptions import ChurnscaleError


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


class ModelNotReadyError(RequestError):
    """The model is not loaded and warmed yet (503)."""

    http_status = 503
    kind = "not_ready"
