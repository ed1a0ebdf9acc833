"""R25 (decoded size): a body that would decode to more than ``CHURNSCALE_MAX_DECODED_BYTES``
is refused with 413 before it is decoded, on a live server with the default limits.

Pass figure: the 15 KB zstd Arrow stream of 60M int64 zeros (480 MB decoded), the same as an
Arrow file, a compressed 10,000-row batch of 1 MiB strings (string views of one shared buffer:
456 bytes, 10 GiB once cast), 400 compressed 1 MiB strings (400 MiB), a JSON array of
``{}`` on ``/invocations`` and v2 infer, and a CSV header of 5M columns → 413 naming the limit;
server RSS growth < 50 MiB (on 866115b the first alone took +462 MiB); ``/readyz`` 200 and a
normal compressed batch still answered after.
"""

from __future__ import annotations

import io
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from reliability_server import Bundles, Server, start, stop

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
ARROW = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"


@pytest.fixture(scope="module")
def defaults(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the default body (16 MiB), row (10,000) and decoded (256 MiB) limits."""
    home = tmp_path_factory.mktemp("r25-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_PREDICTOR": "lightgbm",
    }
    server = start(home / "server.log", env)
    yield server
    stop(server)


def _ipc(table: pa.Table, *, file: bool = False) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression="zstd")
    opened = ipc.new_file if file else ipc.new_stream
    with opened(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _zeros(rows: int) -> pa.Table:
    return pa.table({"tenure_months": pa.array(np.zeros(rows, dtype=np.int64))})


def _long_strings(rows: int, width: int) -> pa.Table:
    """``rows`` strings of ``width`` NUL characters (the zero pages are never touched here)."""
    data = pa.py_buffer(np.zeros(rows * width, dtype=np.uint8))
    offsets = pa.py_buffer(np.arange(0, rows * width + 1, width, dtype=np.int64))
    return pa.table({"plan": pa.Array.from_buffers(pa.large_string(), rows, [None, offsets, data])})


def _shared_views(rows: int, width: int) -> pa.Table:
    """``rows`` string views of ``width`` bytes, all of one shared buffer: 10 GiB once cast."""
    view = struct.pack("<i4sii", width, b"xxxx", 0, 0)
    buffers = [None, pa.py_buffer(view * rows), pa.py_buffer(b"x" * width)]
    return pa.table({"plan": pa.Array.from_buffers(pa.string_view(), rows, buffers)})


class PeakRss:
    """Samples a process's resident memory every 5 ms while it runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def test_bodies_that_decode_past_the_limit_are_refused_first(
    defaults: Server, customers: list[dict[str, Any]]
) -> None:
    empty_objects = b"[" + b",".join([b"{}"] * 4_000_000) + b"]"
    tensor = b'{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":'
    zeros = _zeros(60_000_000)
    bombs = {
        "Arrow stream, 60M zeros": ("/v1/predict/batch", ARROW, _ipc(zeros)),
        "Arrow file, 60M zeros": ("/v1/predict/batch", ARROW_FILE, _ipc(zeros, file=True)),
        "Arrow, 10k x 1 MiB string views": (
            "/v1/predict/batch", ARROW, _ipc(_shared_views(10_000, 1 << 20)),
        ),
        "Arrow, 400 x 1 MiB strings": (
            "/v1/predict/batch", ARROW, _ipc(_long_strings(400, 1 << 20)),
        ),
        "JSON [{}...] on /invocations": (
            "/invocations", "application/json", b'{"dataframe_records":' + empty_objects + b"}",
        ),
        "JSON [{}...] on v2 infer": (
            "/v2/models/churn/infer", "application/json", tensor + empty_objects + b"}]}",
        ),
        "CSV of 5M columns": ("/v1/predict/batch", "text/csv", b",".join([b"a"] * 5_000_000)),
    }  # fmt: skip
    with httpx.Client(base_url=defaults.url, timeout=120) as client:
        good = pa.Table.from_pylist(customers[:100])
        warm = client.post("/v1/predict/batch", content=_ipc(good), headers={"content-type": ARROW})
        assert warm.status_code == 200, warm.text
        with PeakRss(defaults.process.pid) as rss:
            for what, (path, kind, body) in bombs.items():
                started = time.perf_counter()
                answer = client.post(path, content=body, headers={"content-type": kind})
                took = (time.perf_counter() - started) * 1000
                detail = str(answer.json().get("detail") or answer.json().get("error"))
                print(f"R25: {what} ({len(body):,} bytes): {answer.status_code} in {took:.0f} ms")
                assert answer.status_code == 413, (what, answer.text[:300])
                assert "CHURNSCALE_MAX_DECODED_BYTES" in detail, (what, detail)
        growth = (rss.peak - rss.baseline) / 1024**2
        print(f"R25: server RSS {rss.baseline / 1024**2:.0f} MiB, peak growth {growth:.1f} MiB")
        assert growth < 50
        assert client.get("/readyz").status_code == 200
        again = client.post(
            "/v1/predict/batch", content=_ipc(good), headers={"content-type": ARROW}
        )
        assert again.status_code == 200 and len(again.json()["predictions"]) == 100
