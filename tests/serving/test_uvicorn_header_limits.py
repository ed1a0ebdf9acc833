"""Pins the uvicorn behaviour that the gateway's 431 check exists for (see limits.py):
uvicorn itself never answers 431; httptools accepts any header size, and h11 answers 400 only once
an incomplete request head buffered in memory passes h11_max_incomplete_event_size (16 KiB)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _serve(http: str) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        _ok, host="127.0.0.1", port=port, http=http, lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _status_line(port: int, pieces: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        for piece in pieces:
            try:
                connection.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed before reading everything: read the answer
        return connection.recv(64).split(b"\r\n")[0]


@pytest.fixture(params=["httptools", "h11"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from _serve(request.param)


@pytest.mark.integration
def test_uvicorn_sends_no_431(port: int, request: pytest.FixtureRequest) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000
    status = _status_line(port, [head[:20_000], head[20_000:] + b"\r\n\r\n"])
    expected = (
        b"HTTP/1.1 200 OK" if "httptools" in request.node.name else b"HTTP/1.1 400 Bad Request"
    )
    assert status == expected
