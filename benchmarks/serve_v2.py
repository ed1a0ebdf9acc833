"""Open Inference Protocol v2 throughput over HTTP (binary tensors) and gRPC, beside /v1/predict.

One ``churnscale serve --workers N --grpc-port`` process tree, loaded the way
``benchmarks/serve.py`` loads it: 32 connections, 2 load-generator threads, ``--seconds`` a run,
the best of ``--rounds`` rounds kept (the machine is shared), the servers' CPU time per request
beside each rate. HTTP is driven by ``wrk`` (as serve.py), gRPC by ``h2load`` (nghttp2's HTTP/2
load generator; ``-m 1``: one request in flight per connection, as wrk). The bodies are what
tritonclient sends by default: the binary data extension over HTTP, ``raw_input_contents`` over
gRPC; one customer per request, then 1,000 customers per request (rows/s). Every body is
checked once with a real call before the load, and the server's own request counters are
checked after it (h2load counts a gRPC error as an HTTP 200).

    .venv/bin/python benchmarks/serve_v2.py [--workers 2] [--seconds 10] [--rounds 2]

Needs wrk and h2load on PATH (Debian: apt-get install wrk nghttp2-client).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from churnscale.data.synthetic import generate_table
from score import train_100_trees
from serve import LUA, tree_cpu, wait_ready, wrk

HTTP_PORT, GRPC_PORT = 18_750, 18_751
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
BINARY_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "{length}"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
"""


def customers(n: int) -> list[dict[str, Any]]:
    """n generated customers (with their missing values), dates as ISO text."""
    rows = generate_table(n, 42).drop_columns(["churned"]).to_pylist()
    return [
        {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()} for r in rows
    ]


def columns(metadata: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """(name, datatype, raw little-endian bytes) of each input tensor."""
    out = []
    for spec in metadata["inputs"]:
        name, datatype = spec["name"], spec["datatype"]
        values = [r[name] for r in rows]
        if datatype == "FP64":
            raw = np.array([np.nan if v is None else v for v in values], "<f8").tobytes()
        elif datatype == "BOOL":
            raw = np.array([bool(v) for v in values], "?").tobytes()
        else:
            texts = [b"" if v is None else str(v).encode() for v in values]
            raw = b"".join(struct.pack("<I", len(t)) + t for t in texts)
        out.append((name, datatype, raw))
    return out


def http_body(tensors: list[tuple[str, str, bytes]], n: int) -> tuple[bytes, int]:
    """A binary-extension request (JSON header, then the tensors) and its header's length."""
    inputs = [
        {"name": name, "datatype": kind, "shape": [n], "parameters": {"binary_data_size": len(raw)}}
        for name, kind, raw in tensors
    ]
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header + b"".join(raw for _, _, raw in tensors), len(header)


def grpc_message(tensors: list[tuple[str, str, bytes]], n: int) -> bytes:
    """A serialized ModelInferRequest with raw_input_contents (tritonclient.grpc's way)."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name="churn")
    for name, kind, raw in tensors:
        request.inputs.add(name=name, datatype=kind, shape=[n])
        request.raw_input_contents.append(raw)
    return bytes(request.SerializeToString())


def check_once(url: str, body: bytes, length: int, message: bytes, n: int) -> None:
    """One real call per transport: n probabilities back, or the benchmark stops."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    answer = httpx.post(
        url, content=body, headers={"Inference-Header-Content-Length": str(length)}, timeout=30
    )
    answer.raise_for_status()
    assert len(answer.content) - int(answer.headers["inference-header-content-length"]) == 8 * n
    with grpc.insecure_channel(f"127.0.0.1:{GRPC_PORT}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        reply = stub.ModelInfer(service_pb2.ModelInferRequest.FromString(message))
    assert len(reply.raw_output_contents[0]) == 8 * n


def h2load(message_file: Path, seconds: int, processes: list[Any]) -> tuple[float, float, float]:
    """gRPC requests/s, mean ms and the servers' CPU µs per request, of one h2load run."""
    command = [
        "h2load",
        "-c32",
        "-m1",
        "-t2",
        "-d",
        str(message_file),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        f"http://127.0.0.1:{GRPC_PORT}{GRPC_PATH}",
    ]
    subprocess.run([*command[:1], "-D2", *command[1:]], capture_output=True, check=True)
    cpu = tree_cpu(processes)
    done = subprocess.run(
        [*command[:1], f"-D{seconds}", *command[1:]], capture_output=True, text=True, check=True
    )
    cpu = tree_cpu(processes) - cpu
    out = done.stdout
    rate = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    succeeded = int(re.search(r"(\d+) succeeded", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"(\d+) failed, (\d+) errored", out)
    if not succeeded or (failed and (int(failed.group(1)) or int(failed.group(2)))):
        raise RuntimeError(f"h2load: failed requests\n{out}")
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    value, unit = mean.groups()  # type: ignore[union-attr]
    ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, ms, cpu / succeeded * 1e6


def grpc_statuses(url: str) -> dict[str, float]:
    """The server's own count of gRPC ModelInfer calls, by status (one worker's scrape)."""
    text = httpx.get(url, timeout=10).text
    pattern = rf'churnscale_requests_total{{route="{GRPC_PATH}",status="(\d+)"}} ([\d.e+]+)'
    return {status: float(count) for status, count in re.findall(pattern, text)}


def all_ready(url: str, workers: int, timeout: float = 120) -> None:
    """Wait for 10 x workers ready answers in a row, each on a fresh connection (every worker
    warm; as tests/serving/live_server.py)."""
    streak, deadline = 0, time.monotonic() + timeout
    while streak < 10 * workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the server never became ready")
        streak = streak + 1 if httpx.get(url, timeout=5).status_code == 200 else 0
        if not streak:
            time.sleep(0.2)


def measure(root: Path, seconds: int, rounds: int, processes: list[Any]) -> list[tuple[Any, ...]]:
    """(case, rows per request, req/s, latency ms, CPU µs/req) of every case, best round each."""
    base = f"http://127.0.0.1:{HTTP_PORT}"
    metadata = httpx.get(f"{base}/v2/models/churn", timeout=10).json()
    v1_body = json.dumps(customers(1)[0]).encode()
    (root / "v1.json").write_bytes(v1_body)
    (root / "v1.lua").write_text(LUA.format(body=root / "v1.json"))
    cases: list[tuple[str, int, Any]] = [("v1 JSON /v1/predict", 1, ("wrk", root / "v1.lua"))]
    for n in (1, 1000):
        tensors = columns(metadata, customers(n))
        body, length = http_body(tensors, n)
        message = grpc_message(tensors, n)
        check_once(f"{base}/v2/models/churn/infer", body, length, message, n)
        (root / f"v2-{n}.bin").write_bytes(body)
        (root / f"v2-{n}.lua").write_text(
            BINARY_LUA.format(length=length, body=root / f"v2-{n}.bin")
        )
        (root / f"grpc-{n}.bin").write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
        cases.append(("v2 HTTP binary", n, ("wrk", root / f"v2-{n}.lua")))
        cases.append(("v2 gRPC", n, ("h2load", root / f"grpc-{n}.bin")))
    best: dict[tuple[str, int], tuple[float, float, float]] = {}
    for _ in range(rounds):
        for case, n, (tool, path) in cases:
            if tool == "wrk":
                url = base + (
                    "/v1/predict" if n == 1 and "v1" in case else "/v2/models/churn/infer"
                )
                rate, p50, _, cpu = wrk(url, path, seconds, processes)
                result = (rate, p50, cpu)
            else:
                result = h2load(path, seconds, processes)
            if (case, n) not in best or result[0] > best[(case, n)][0]:
                best[(case, n)] = result
    statuses = grpc_statuses(f"{base}/metrics")
    if set(statuses) - {"200"}:
        raise RuntimeError(f"gRPC calls answered with errors: {statuses}")
    return [(case, n, *best[(case, n)]) for case, n, _ in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"benchmarks/serve_v2.py needs {tool} (apt-get install wrk nghttp2-client)"
            )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_100_trees(root)
        command = [sys.executable, "-m", "churnscale", "serve", "--model", str(root / "model")]
        command += ["--port", str(HTTP_PORT), "--grpc-port", str(GRPC_PORT)]
        process = subprocess.Popen([*command, "--workers", str(args.workers)])
        try:
            wait_ready(f"http://127.0.0.1:{HTTP_PORT}/v1/predict", process)
            all_ready(f"http://127.0.0.1:{HTTP_PORT}/readyz", args.workers)
            results = measure(root, args.seconds, args.rounds, [process])
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(results, args.workers, args.seconds)


def report(results: list[tuple[Any, ...]], workers: int, seconds: int) -> None:
    v1 = results[0][2]
    print(
        f"churnscale serve --workers {workers} --grpc-port, 32 connections (wrk -t2 -c32; "
        f"h2load -t2 -c32 -m1), {seconds} s runs, {os.cpu_count()} cores"
    )
    print(
        f"{'case':<22}{'rows/req':>9}{'req/s':>10}{'rows/s':>11}{'ms':>8}{'× v1':>7}"
        f"{'CPU µs/req':>12}"
    )
    for case, n, rate, ms, cpu in results:
        print(
            f"{case:<22}{n:>9,}{rate:>10,.0f}{rate * n:>11,.0f}{ms:>8.2f}{rate / v1:>7.2f}"
            f"{cpu:>12.1f}"
        )
    print("ms: p50 for wrk, mean for h2load (it reports no percentiles)")


if __name__ == "__main__":
    main()
