"""The fast path (``POST /v1/predict`` answered inside the HTTP protocol) over real sockets:
the same answers as the ASGI path, and every request it does not take still served right."""

from __future__ import annotations

import re
import socket
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from live_server import Server, start_server, stop_server
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from churnscale.model.lightgbm import LightGBMModel
from churnscale.serving.fastpath import TESTED_UVICORN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def asgi_only(bundle: Path, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch_module.setenv("CHURNSCALE_FAST_PATH", "false")
    running = start_server(bundle)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _post(url: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", content=body, headers={"content-type": content_type})


def _bodies(customers: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
    good = orjson.dumps(customers[0])
    return [
        (good, "application/json"),
        (good, "application/json; charset=utf-8"),
        (orjson.dumps({**customers[1], "tenure_months": "x"}), "application/json"),
        (orjson.dumps({**customers[1], "contract_type": 7}), "application/json"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (good, "text/csv"),
        (orjson.dumps({"unknown_field": 1}), "application/json"),
    ]


def test_fast_path_answers_exactly_as_the_asgi_path(
    server: Server, asgi_only: Server, customers: list[dict[str, Any]]
) -> None:
    for body, kind in _bodies(customers):
        fast, slow = _post(server.url, body, kind), _post(asgi_only.url, body, kind)
        assert fast.status_code == slow.status_code, (body, fast.text, slow.text)
        assert fast.json() == slow.json(), body
        for header in ("content-type", "x-model-version", "x-model-arm"):
            assert fast.headers.get(header) == slow.headers.get(header), header


def _request(body: bytes, *, extra: str = "", version: str = "1.1") -> bytes:
    head = (
        f"POST /v1/predict HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """Read ``count`` responses (Content-Length framed) from a keep-alive connection."""
    data, out = b"", []
    while len(out) < count:
        chunk = sock.recv(65_536)
        if not chunk:
            break
        data += chunk
        while b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            if head.startswith(b"HTTP/1.1 100 "):  # the interim answer to Expect: 100-continue
                data = rest
                continue
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            if len(rest) < length:
                break
            out.append((int(head.split(b" ")[1]), rest[:length]))
            data = rest[length:]
    return out


def test_pipelined_requests_mixing_fast_and_asgi_are_answered_in_order(
    server: Server, model: LightGBMModel, customers: list[dict[str, Any]]
) -> None:
    first, second = orjson.dumps(customers[0]), orjson.dumps(customers[1])
    pipeline = (
        _request(first)
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        + _request(second)
        + _request(b"{oops")
        + _request(first, extra="X-Trace: 1\r\n")
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(pipeline)
        answers = _responses(sock, 5)
    assert [status for status, _ in answers] == [200, 200, 200, 422, 200]
    assert orjson.loads(answers[1][1])["status"] == "ok"
    probabilities = [orjson.loads(answers[i][1])["churn_probability"] for i in (0, 2, 4)]
    ids = [orjson.loads(answers[i][1])["customer_id"] for i in (0, 2, 4)]
    assert ids == [customers[0]["customer_id"], customers[1]["customer_id"], ids[0]]
    assert probabilities[0] == probabilities[2]


@pytest.fixture(scope="module")
def short_keep_alive(bundle: Path, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch_module.setenv("CHURNSCALE_KEEP_ALIVE_S", str(KEEP_ALIVE_S))
    running = start_server(bundle)
    monkeypatch_module.delenv("CHURNSCALE_KEEP_ALIVE_S")
    yield running
    stop_server(running)


KEEP_ALIVE_S = 2.0


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (nothing else may arrive)."""
    start = time.monotonic()
    sock.settimeout(30)
    assert sock.recv(1) == b""
    return time.monotonic() - start


@pytest.mark.parametrize("second", ["fast", "asgi"])
def test_an_idle_connection_closes_its_keep_alive_after_the_last_answer(
    short_keep_alive: Server, customers: list[dict[str, Any]], second: str
) -> None:
    """The fast path's keep-alive timer is armed once and moved on lazily: a connection that
    answered a request most of a keep-alive ago and then another one stays open for a whole
    keep-alive after the second answer (a stale timer would close it early), then closes."""
    body = orjson.dumps(customers[0])
    follow = _request(body) if second == "fast" else b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", short_keep_alive.port), timeout=10) as sock:
        sock.sendall(_request(body))
        assert [s for s, _ in _responses(sock, 1)] == [200]
        time.sleep(KEEP_ALIVE_S * 0.75)
        sock.sendall(follow)
        assert [s for s, _ in _responses(sock, 1)] == [200]
        closed = _closed_after(sock)
    assert KEEP_ALIVE_S * 0.9 <= closed <= KEEP_ALIVE_S + 10, closed


def test_requests_the_fast_path_leaves_to_asgi_are_still_answered(
    server: Server, customers: list[dict[str, Any]]
) -> None:
    body = orjson.dumps(customers[0])
    expected = _post(server.url, body).json()
    chunked = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    cases = [
        chunked,
        _request(body, version="1.0"),
        _request(body, extra="Connection: close\r\n"),
        _request(body, extra="Expect: 100-continue\r\n"),
        _request(body).replace(b"/v1/predict", b"/v1/predict?reasons=false"),
    ]
    for raw in cases:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(raw)
            answers = _responses(sock, 1)
        assert answers and answers[0][0] == 200, raw[:80]
        assert orjson.loads(answers[0][1]) == expected, raw[:80]


def test_fast_path_predictions_are_counted_in_the_metrics(
    server: Server, customers: list[dict[str, Any]]
) -> None:
    pattern = re.compile(r'churnscale_requests_total\{route="/v1/predict",status="200"\} (\S+)')

    def count() -> float:
        match = pattern.search(httpx.get(f"{server.url}/metrics").text)
        return float(match.group(1)) if match else 0.0

    before = count()
    with httpx.Client(base_url=server.url) as client:  # one keep-alive connection
        for customer in customers[:25]:
            assert client.post("/v1/predict", json=customer).status_code == 200
    assert count() == before + 25


def test_uvicorn_is_a_version_the_fast_path_is_tested_on() -> None:
    """The fast path subclasses uvicorn's ``HttpToolsProtocol`` and uses its internals: any
    other uvicorn version must be tested (this module, tests/serving, tests/reliability) before
    ``TESTED_UVICORN`` and the pin in pyproject.toml are widened together."""
    installed = Version(uvicorn.__version__)
    assert installed in SpecifierSet(TESTED_UVICORN), (
        f"uvicorn {installed} is installed, but churnscale/serving/fastpath.py subclasses "
        f"uvicorn internals and is tested on uvicorn{TESTED_UVICORN} only: run tests/serving "
        "and tests/reliability on this version, then widen TESTED_UVICORN and pyproject.toml"
    )
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = [Requirement(r) for r in project["project"]["dependencies"]]
    assert [str(r.specifier) for r in pins if r.name == "uvicorn"] == [
        str(SpecifierSet(TESTED_UVICORN))
    ], "pyproject.toml must pin uvicorn to TESTED_UVICORN (serving/fastpath.py)"
    for internal in ("_unset_keepalive_if_required", "timeout_keep_alive_handler", "on_body"):
        assert hasattr(HttpToolsProtocol, internal), f"uvicorn lost {internal}"
