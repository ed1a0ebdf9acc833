"""The ASGI side of the gateway's exchanges: JSON answers sent, bodies checked and replayed,
forwarded answers tagged with the model version and arm."""

from __future__ import annotations

from typing import Protocol

from starlette.types import Message, Receive, Scope, Send

from churnscale.serving.bodies import JSON, media_type, read_body
from churnscale.serving.decoded import check_json
from churnscale.serving.deployment import Deployment
from churnscale.serving.jsonbody import check_document
from churnscale.serving.v2_binary import HEADER_LENGTH, header_length

#: Routes with JSON bodies: a POST with a JSON body there is checked (UTF-8, no repeated key)
#: before the route runs.
JSON_ROUTES = ("/v1/", "/v2/", "/invocations", "/admin/")


class Deployed(Protocol):
    """What holds the deployment in force (the gateway's ``ServiceState``)."""

    deployment: Deployment | None


async def checked_json(scope: Scope, receive: Receive, max_decoded: int) -> Receive:
    """``receive``, or, for a POST with a JSON body to a JSON route, a ``receive`` that replays
    the whole body once it passed :func:`check_document` (UTF-8, no repeated key), which
    decodes it: so its decoded size is bounded first (413 over ``max_decoded`` bytes). With Open
    Inference v2's binary extension only the JSON head (``Inference-Header-Content-Length``
    bytes) is JSON."""
    headers = scope["headers"]
    if (
        scope["method"] != "POST"
        or not scope["path"].startswith(JSON_ROUTES)
        or media_type(headers) not in (JSON, "")
    ):
        return receive
    body = await read_body(receive, headers, 1 << 62)  # receive is already limited
    if body:
        # Triton's binary extension: a JSON header, then raw tensor bytes that are not text
        declared = dict(headers).get(HEADER_LENGTH.encode())
        length = header_length(declared.decode("latin-1") if declared is not None else None)
        head = body[:length]
        check_json(head, max_decoded, binary=len(body) - len(head))
        check_document(head)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


_CLOSE = (b"connection", b"close")


def header_bytes(scope: Scope) -> int:
    """Size of a request's head as the server received it: headers, path and query."""
    size: int = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return size + len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")


class ForwardedCycle:
    """Tags a forwarded response with the version and arm in force when it started."""

    def __init__(self, state: Deployed, send: Send) -> None:
        self.deployment = state.deployment
        self.state = state
        self.downstream = send
        self.status: int | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            version, arm = tags(self.deployment or self.state.deployment)
            if version is not None:
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-model-version", version.encode("latin-1")),
                    (b"x-model-arm", arm.encode("latin-1")),
                ]
            if self.status == 413:  # a body past the limit: the rest of it is never read
                message["headers"] = [*message.get("headers", []), _CLOSE]
        await self.downstream(message)


def tags(deployment: Deployment | None) -> tuple[str | None, str]:
    """The primary arm's version and name (None while loading)."""
    if deployment is None:
        return None, ""
    return deployment.primary.version, deployment.primary.name


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    version: str | None,
    *,
    arm: str = "",
    extra: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
) -> None:
    """Send a complete JSON response (with the model version and arm when known, and
    ``Connection: close`` when ``close``)."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if version is not None:
        headers.append((b"x-model-version", version.encode("latin-1")))
        headers.append((b"x-model-arm", arm.encode("latin-1")))
    if extra:
        headers.extend(extra)
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
