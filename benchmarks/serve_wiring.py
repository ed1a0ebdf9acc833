"""What the production wiring costs the hot path: ``POST /v1/predict`` through the ASGI app
(called directly, no sockets: only the app's own work is timed) before and after the wiring.

- **before**: the code of ``--base-ref`` (default ``main``), exported with ``git archive`` to a
  temporary directory and imported from there in a child process;
- **after**: this checkout with defaults (one arm, no keys: admission control and the deadline
  still run), with an API key checked on every request, and with three A/B arms plus a shadow
  model (its scoring thread shares the process, as in the service).

Each configuration runs in its own process; the configurations alternate for ``--rounds``
rounds and the best round of each is kept. Figures are CPU µs per request (``process_time``
of the whole process, so the shadow thread's work counts; wall time on a machine shared by
many jobs measures the scheduler, not the code) and the ratio to *before* in the same run.

    .venv/bin/python benchmarks/serve_wiring.py [--base-ref main] [--calls 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

KEY = "bench-key-0123456789abcdef"
CONFIGS = ("before", "after: defaults", "after: API key", "after: 3 arms + shadow")


async def _lifespan(app: Any) -> None:
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.Event()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message"))
        if message["type"] == "lifespan.startup.complete":
            started.set()

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await started.wait()
    app._bench_lifespan = task


async def _drive(app: Any, body: bytes, calls: int, headers: list[tuple[bytes, bytes]]) -> float:
    scope_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(out: dict[str, Any]) -> None:
        if out["type"] == "http.response.start":
            statuses.append(out["status"])

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "method": "POST",
            "path": "/v1/predict",
            "query_string": b"",
            "headers": scope_headers,
        }

    for _ in range(200):
        await app(scope(), receive, send)
    started = time.process_time()  # CPU of the whole process (the shadow thread's included)
    for _ in range(calls):
        await app(scope(), receive, send)
    shadow = getattr(getattr(app, "guards", None), "shadow", None)
    if shadow is not None:  # let the shadow thread finish its queue: its CPU is part of the cost
        await asyncio.to_thread(shadow.close, 120.0)
    elapsed = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses {set(statuses)}")
    return elapsed / calls * 1e6


def child(config: str, model: str, body_path: str, calls: int) -> None:
    """Run one configuration in this process and print µs per request."""
    import uvloop

    from churnscale.config import Settings
    from churnscale.serving.app import create_app

    headers: list[tuple[bytes, bytes]] = []
    settings: dict[str, Any] = {"model": model, "home": Path(body_path).parent / "home"}
    if config == "after: API key":
        settings["api_keys"] = KEY
        headers.append((b"authorization", f"Bearer {KEY}".encode()))
    if config == "after: 3 arms + shadow":
        arms = [{"name": n, "model": model, "weight": 1} for n in ("a", "b", "c")]
        settings["routing"] = json.dumps({"arms": arms, "shadow": model})
    app = create_app(Settings(**settings))
    body = Path(body_path).read_bytes()

    async def run() -> float:
        await _lifespan(app)
        return await _drive(app, body, calls, headers)

    print(f"{uvloop.run(run()):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-ref", default="main")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=CONFIGS)
    parser.add_argument("--model", default="")
    parser.add_argument("--body", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.body, args.calls)
        return
    from score import train_100_trees
    from serve import customer

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_100_trees(root)
        body = root / "body.json"
        body.write_bytes(json.dumps(customer()).encode())
        base = root / "base"
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", args.base_ref, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for config in CONFIGS:
                source = base / "src" if config == "before" else repo / "src"
                env = {**os.environ, "PYTHONPATH": str(source)}
                command = [sys.executable, __file__, "--child", config, "--model"]
                command += [str(root / "model"), "--body", str(body), "--calls", str(args.calls)]
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                micros = float(out.stdout.strip().splitlines()[-1])
                best[config] = min(best.get(config, micros), micros)
    report(best, args)


def report(best: dict[str, float], args: argparse.Namespace) -> None:
    before = best["before"]
    print(
        f"POST /v1/predict through the ASGI app in process, CPU time, {args.calls:,} calls, "
        f"best of {args.rounds} rounds, {os.cpu_count()} cores; before = {args.base_ref}"
    )
    print(f"{'configuration':<28}{'CPU µs/req':>12}{'× before':>10}")
    for config in CONFIGS:
        print(f"{config:<28}{best[config]:>12.2f}{best[config] / before:>10.2f}")


if __name__ == "__main__":
    main()
