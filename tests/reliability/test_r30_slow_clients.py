"""R30 (slow clients are timed out, on the fast path too): a real ``churnscale serve`` with short
test timeouts (head 1 s, body 2 s, deadline 1.5 s) gets 200 stalled connections at once: idle
ones that never send a byte, slowloris ones that send half a request head and then a byte every
0.3 s, and slow bodies that send a head and part of the body of ``POST /v1/predict`` (fast path)
or ``POST /v1/predict?reasons=true`` and ``/v1/predict/batch`` (ASGI path), then stall. Every
one is closed by the server within its timeout (+1.5 s of slack on a loaded machine), the slow
bodies answered 408 or 504 first, while a steady client on its own connection keeps getting
200s; the server's RSS grows by less than 50 MiB. Then bodies that together pass the buffered
bytes limit get 503 for the one that crosses it, and connections past the connection cap get
503. Figure: stalled connections closed, the slowest close, the steady client's answers, the
RSS growth."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from reliability_server import Bundles, Server, start, stop

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

HEAD_S, BODY_S, DEADLINE_S, SLACK_S = 1.0, 2.0, 1.5, 1.5
BUFFERED = 4 * 1024 * 1024
MAX_CONNECTIONS = 400


@pytest.fixture(scope="module")
def slow_server(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("slow-clients-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_PREDICTOR": "lightgbm",
        "CHURNSCALE_HEADER_TIMEOUT_S": str(HEAD_S),
        "CHURNSCALE_BODY_TIMEOUT_S": str(BODY_S),
        "CHURNSCALE_REQUEST_TIMEOUT_S": str(DEADLINE_S),
        "CHURNSCALE_MAX_BUFFERED_BYTES": str(BUFFERED),
        "CHURNSCALE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "CHURNSCALE_MAX_IN_FLIGHT": "256",
    }
    server = start(home / "server.log", env)
    yield server
    stop(server)


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setblocking(False)
    return sock


def _head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


class Stalled:
    """One stalled connection: what it sent, when the server closed it, what it answered."""

    def __init__(self, kind: str, sock: socket.socket, limit: float) -> None:
        self.kind, self.sock, self.limit = kind, sock, limit
        self.opened = time.monotonic()
        self.closed: float | None = None
        self.received = b""

    def poll(self) -> None:
        """Read what the server sent; note when it closed the connection."""
        try:
            while chunk := self.sock.recv(65_536):
                self.received += chunk
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self.closed = time.monotonic()
        self.sock.close()

    def trickle(self) -> None:
        """A slowloris sends one more byte of a head that never ends."""
        if self.kind == "slowloris" and self.closed is None:
            try:
                self.sock.send(b"a")
            except OSError:
                self.poll()

    @property
    def status(self) -> int | None:
        return int(self.received.split(b" ", 2)[1]) if self.received else None


def _stall(server: Server, customer: dict[str, Any]) -> list[Stalled]:
    body = orjson.dumps(customer)
    batch = orjson.dumps([customer] * 50)
    stalled = []
    for i in range(200):
        sock = _connect(server)
        if i % 4 == 0:
            stalled.append(Stalled("idle", sock, HEAD_S))
        elif i % 4 == 1:
            sock.send(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            stalled.append(Stalled("slowloris", sock, HEAD_S))
        else:
            path, payload = [
                ("/v1/predict", body),
                ("/v1/predict?reasons=true", body),
                ("/v1/predict/batch", batch),
            ][i % 3]
            sock.send(_head(path, len(payload)) + payload[: len(payload) // 2])
            limit = min(BODY_S, DEADLINE_S) if "predict" in path else BODY_S
            stalled.append(Stalled(f"slow body {path}", sock, limit))
    return stalled


def _steady(server: Server, customer: dict[str, Any], stop: threading.Event) -> Counter[int]:
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while not stop.is_set():
            statuses[client.post("/v1/predict", json=customer).status_code] += 1
            time.sleep(0.02)
    return statuses


def test_stalled_connections_are_closed_while_a_steady_client_is_served(
    slow_server: Server, customers: list[dict[str, Any]]
) -> None:
    assert httpx.post(f"{slow_server.url}/v1/predict", json=customers[0]).status_code == 200
    rss_before = slow_server.rss_bytes()
    stop_steady = threading.Event()
    steady: list[Counter[int]] = []
    runner = threading.Thread(
        target=lambda: steady.append(_steady(slow_server, customers[1], stop_steady))
    )
    runner.start()
    stalled = _stall(slow_server, customers[2])
    rss_peak = rss_before
    give_up = time.monotonic() + max(HEAD_S, BODY_S) + 10
    while time.monotonic() < give_up and any(s.closed is None for s in stalled):
        for s in stalled:
            if s.closed is None:
                s.poll()
                s.trickle()
        rss_peak = max(rss_peak, slow_server.rss_bytes())
        time.sleep(0.3)
    stop_steady.set()
    runner.join()
    open_ones = [s.kind for s in stalled if s.closed is None]
    late = [
        (s.kind, round(s.closed - s.opened, 2))
        for s in stalled
        if s.closed is not None and s.closed - s.opened > s.limit + SLACK_S
    ]
    slowest = max((s.closed or 0) - s.opened for s in stalled)
    answers = Counter((s.kind, s.status) for s in stalled)
    growth = (rss_peak - rss_before) / 2**20
    print(
        f"R30: {len(stalled) - len(open_ones)}/{len(stalled)} stalled connections closed, "
        f"slowest after {slowest:.2f} s; answers {dict(answers)}; steady client {dict(steady[0])}; "
        f"RSS +{growth:.1f} MiB"
    )
    for s in stalled:
        s.sock.close()
    assert open_ones == []
    assert late == []
    assert all(s.status in (408, 504) for s in stalled if s.kind.startswith("slow body"))
    assert all(s.status is None for s in stalled if s.kind == "idle")
    assert set(steady[0]) == {200} and steady[0][200] >= 20
    assert growth < 50
    assert httpx.get(f"{slow_server.url}/readyz").status_code == 200


def test_buffered_bodies_past_the_limit_and_connections_past_the_cap_get_503(
    slow_server: Server,
) -> None:
    part = 900 * 1024  # each body declares 1 MiB and sends 900 KiB: 5 of them pass 4 MiB
    socks = []
    for _ in range(6):
        sock = _connect(slow_server)
        sock.send(_head("/v1/predict", 1024 * 1024))
        sock.setblocking(True)
        sock.sendall(b" " * part)
        socks.append(sock)
    time.sleep(0.3)
    statuses = []
    for sock in socks:
        sock.settimeout(BODY_S + SLACK_S + 2)
        statuses.append(int(sock.recv(4096).split(b" ", 2)[1]))
        sock.close()
    print(f"R30: bodies of 900 KiB against a {BUFFERED} byte buffer limit: {statuses}")
    assert statuses.count(503) >= 1
    assert set(statuses) <= {503, 504}  # the rest stalled until the deadline
    held = [_connect(slow_server) for _ in range(MAX_CONNECTIONS)]
    try:
        answer = httpx.get(f"{slow_server.url}/healthz", timeout=10)
    finally:
        for sock in held:
            sock.close()
    print(f"R30: past {MAX_CONNECTIONS} connections: {answer.status_code}")
    assert answer.status_code == 503
