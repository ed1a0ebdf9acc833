"""CPU per ``POST /v1/predict`` request inside the fast-path protocol, without sockets.

The service's protocol class (:func:`churnscale.serving.fastpath.fast_path_protocol`) is fed
whole HTTP requests through ``data_received`` on a transport that only records its writes, so
the figure is the service's own work per request (parse, admission, validation, prediction,
answer, metrics), free of the kernel and the load generator that ``benchmarks/serve.py``
measures with it. Meant to compare builds of the source tree on a shared machine: run it once
per build (``PYTHONPATH=<worktree>/src``), interleaved, and compare the best figures.

    .venv/bin/python benchmarks/fastpath_cpu.py MODEL_DIR [--requests 10000] [--label main]
        [--loop uvloop|asyncio]   # uvloop (the default) is the loop `churnscale serve` runs

``MODEL_DIR`` is a saved bundle (e.g. ``benchmarks/score.py``'s ``train_100_trees`` output).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.serving.app import create_app
from churnscale.serving.fastpath import fast_path_protocol


class Recorder(asyncio.Transport):
    """A transport that keeps the last write and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes, self.last = 0, b""

    def write(self, data: Any) -> None:
        self.writes += 1
        self.last = bytes(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


def request() -> bytes:
    """One generated customer as ``serve.py`` sends it."""
    row = generate_table(1, 42).to_pylist()[0]
    row.pop("churned", None)
    body = json.dumps({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()})
    head = "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


async def measure(model: Path, requests: int) -> float:
    """Best of five rounds, CPU µs per request."""
    settings = Settings(model=str(model), home=model.parent / "fastpath-home")
    app = create_app(settings)
    startup: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def send(message: Any) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(lifespan, startup.get, send))
    await started.wait()
    while app.state.deployment is None:
        await asyncio.sleep(0.05)
    # older builds bound the protocol to the gateway alone
    bound = len(inspect.signature(fast_path_protocol).parameters) == 2
    cls = fast_path_protocol(app, settings) if bound else fast_path_protocol(app)  # type: ignore[call-arg]
    config = uvicorn.Config(app, http=cls, lifespan="off", access_log=False, log_level="warning")
    config.load()
    protocol = cls(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = Recorder()
    protocol.connection_made(transport)
    raw = request()
    for _ in range(500):  # warm up
        protocol.data_received(raw)
    assert b" 200 " in transport.last.split(b"\r\n")[0], transport.last[:300]
    best, per_round = float("inf"), max(1, requests // 5)
    for _ in range(5):
        cpu = time.process_time()
        for i in range(per_round):
            protocol.data_received(raw)
            if i % 100 == 0:
                await asyncio.sleep(0)  # let uvicorn's timers run
        best = min(best, (time.process_time() - cpu) / per_round * 1e6)
    task.cancel()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--label", default="this build")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":  # what `churnscale serve` runs on
        import uvloop

        figure = uvloop.run(measure(args.model.resolve(), args.requests))
    else:
        figure = asyncio.run(measure(args.model.resolve(), args.requests))
    print(f"{args.label}: {figure:.1f} CPU µs a request (best of 5 rounds of {args.requests // 5})")


if __name__ == "__main__":
    main()
