"""BodyLimitMiddleware under a real uvicorn server on 127.0.0.1, driven over HTTP by httpx."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

APP = Path(__file__).with_name("_body_limit_app.py")
LIMIT = 1_000_000
CHUNK = 64 * 1024


@dataclass
class Server:
    url: str
    process: psutil.Process


@dataclass
class Upload:
    """A chunked request body that counts what the client managed to hand over."""

    total: int
    sent: int = field(default=0)

    def __iter__(self) -> Iterator[bytes]:
        block = b"x" * CHUNK
        while self.sent < self.total:
            piece = block[: min(CHUNK, self.total - self.sent)]
            self.sent += len(piece)
            yield piece


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    command = [sys.executable, str(APP), str(port), str(LIMIT), request.param]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stderr=stderr)
    try:
        _wait_until_listening(port, process, log)
        yield Server(f"http://127.0.0.1:{port}", psutil.Process(process.pid))
    finally:
        process.terminate()
        process.wait(timeout=10)
    # the app's failures after a 413 are swallowed, so the server logs nothing at all
    assert "Traceback" not in log.read_text()


def _calls(server: Server) -> int:
    return int(httpx.get(f"{server.url}/stats").json()["upload"])


@pytest.mark.integration
@pytest.mark.parametrize("size", [0, 1, LIMIT])
def test_body_within_the_limit_is_served(server: Server, size: int) -> None:
    response = httpx.post(f"{server.url}/upload", content=b"x" * size)
    assert (response.status_code, response.json()) == (200, {"bytes": size})
    chunked = httpx.post(f"{server.url}/upload", content=Upload(size))
    assert (chunked.status_code, chunked.json()) == (200, {"bytes": size})


@pytest.mark.integration
def test_content_length_one_byte_over_is_refused_before_the_app(server: Server) -> None:
    before = _calls(server)
    response = httpx.post(f"{server.url}/upload", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body too large: Content-Length {LIMIT + 1} bytes, limit {LIMIT} bytes"
    }
    assert _calls(server) == before


@pytest.mark.integration
def test_chunked_one_byte_over_is_refused(server: Server) -> None:
    response = httpx.post(f"{server.url}/upload", content=Upload(LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body too large: body of more than {LIMIT} bytes, limit {LIMIT} bytes"
    }
    assert response.headers["connection"] == "close"


@pytest.mark.integration
def test_huge_chunked_upload_is_cut_short_in_bounded_memory(server: Server) -> None:
    httpx.post(f"{server.url}/upload", content=Upload(LIMIT))  # warm the server's buffers
    baseline = server.process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    upload = Upload(100 * 1024 * 1024)
    try:
        response = httpx.post(f"{server.url}/upload", content=upload, timeout=60)
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 413
    assert upload.sent < upload.total // 4, "the client was made to send most of the body"
    assert peak[0] - baseline < 10 * 1024 * 1024
    assert httpx.get(f"{server.url}/stats").status_code == 200  # the server still serves


@pytest.mark.integration
def test_oversized_headers_get_431(server: Server) -> None:
    response = httpx.get(f"{server.url}/stats", headers={"x-padding": "p" * 9_000})
    assert response.status_code == 431
    assert response.json()["detail"].startswith("request headers too large: ")
    assert httpx.get(f"{server.url}/stats", headers={"x-padding": "p" * 7_000}).status_code == 200
