"""Single-row prediction service throughput under wrk, beside the ceiling and the textbook way.

Up to four servers, each with the same number of processes, measured in the same run with
``wrk`` on the same machine (32 connections, 2 wrk threads); the ceiling and the churnscale
servers alternate for ``--rounds`` rounds and the best round of each is kept (the machine is
shared):

- **ceiling**: a bare ASGI app that answers a constant JSON body (uvicorn, httptools, uvloop);
- **churnscale 100**: ``churnscale serve --workers N`` answering ``POST /v1/predict`` with a
  model of exactly 100 rounds (``train_100_trees``);
- **churnscale default**: the same with the model ``churnscale train`` makes with every default
  on the generator's 100,000 customers (``benchmarks/default_model.py``, cached; ``--retrain``);
- **textbook**: FastAPI + pydantic, a pickled scikit-learn pipeline (ordinal encoding +
  LGBMClassifier, 100 trees) and a pandas DataFrame per request. Pickle is used only here, for
  the baseline; churnscale never pickles a model.

Beside each throughput, the servers' CPU time per request (user + system of every server
process, over the measured run): a figure that other jobs on the machine disturb far less than
requests/s, and the textbook's CPU per request over each server's.

Then the parts of the hot path, in process: validation (msgspec vs orjson + a per-field loop)
and the trees of each model (LightGBM ``predict`` with one thread vs lleaves).

``--pin`` runs one process per server on core 0 and wrk on core 1 (``taskset``), the issue's
setting; ``--only 100,default`` picks the servers beside the ceiling.

    .venv/bin/python benchmarks/serve.py [--workers 2] [--seconds 10] [--pin] [--only default]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from churnscale.data.synthetic import generate_table
from churnscale.model.lightgbm import LightGBMModel
from default_model import Forest, default_model
from score import train_100_trees

#: The servers besides the ceiling, by ``--only`` name.
CHOICES = ("100", "default", "textbook")

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
"""


# ---- the two comparison servers (run as `serve.py --child KIND`) ------------------------------
def ceiling_app() -> Any:
    body = b'{"churn_probability":0.5}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"25")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def textbook_app(pipeline_path: str) -> Any:
    import pandas as pd
    from fastapi import FastAPI

    with open(pipeline_path, "rb") as handle:
        pipeline = pickle.load(handle)  # the textbook way; never done in src/
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(customer: dict[str, Any]) -> dict[str, float]:
        frame = pd.DataFrame([customer])
        return {"churn_probability": float(pipeline.predict_proba(frame)[0, 1])}

    return app


def run_child(kind: str, port: int, pipeline: str) -> None:
    import uvicorn

    from churnscale.serving.server import reuseport_socket

    app = ceiling_app() if kind == "ceiling" else textbook_app(pipeline)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[reuseport_socket("127.0.0.1", port)])


def make_textbook(root: Path) -> Path:
    import lightgbm as lgb
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame = generate_table(60_000, 5).to_pandas()
    y = frame.pop("churned")
    frame = frame.drop(columns=["customer_id", "signup_date", "snapshot_date"])
    categorical = [c for c in frame.columns if str(frame[c].dtype) == "category"]
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    pipeline = Pipeline(
        [
            ("encode", ColumnTransformer([("cat", encoder, categorical)], remainder="passthrough")),
            ("model", lgb.LGBMClassifier(n_estimators=100, verbose=-1)),
        ]
    )
    pipeline.fit(frame.astype(dict.fromkeys(categorical, str)), y)
    path = root / "pipeline.pkl"
    path.write_bytes(pickle.dumps(pipeline))
    return path


# ---- driving the servers ----------------------------------------------------------------------
def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.post(url, content=b"{}", timeout=2).status_code != 503:
                return  # 503 until the model is loaded and its trees compiled
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} never answered")


def start(
    kind: str, port: int, workers: int, model: Path, pipeline: Path, pin: list[str]
) -> list[Any]:
    if kind.startswith("churnscale"):
        command = [*pin, sys.executable, "-m", "churnscale", "serve", "--model", str(model)]
        command += ["--port", str(port), "--workers", str(workers)]
        return [subprocess.Popen(command)]
    child = [*pin, sys.executable, __file__, "--child", kind, "--port", str(port)]
    return [subprocess.Popen([*child, "--pipeline", str(pipeline)]) for _ in range(workers)]


def tree_cpu(processes: list[Any]) -> float:
    """CPU seconds (user + system) used so far by the servers' processes and their children."""
    import psutil

    total = 0.0
    for process in processes:
        try:
            parent = psutil.Process(process.pid)
            tree = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def wrk(
    url: str, script: Path, seconds: int, processes: list[Any], pin: list[str]
) -> tuple[float, float, float, float]:
    """Requests/s, p50 and p99 ms, and the servers' CPU µs per request, of one wrk run."""
    load = [*pin, "wrk", "-t2", "-c32"]
    subprocess.run([*load, "-d2s", "-s", str(script), url], capture_output=True)
    cpu = tree_cpu(processes)
    done = subprocess.run(
        [*load, f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = tree_cpu(processes) - cpu
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return rate, _ms(out, "50%"), _ms(out, "99%"), cpu / requests * 1e6


def _ms(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(
    urls: dict[str, str],
    script: Path,
    seconds: int,
    rounds: int,
    running: dict[str, list[Any]],
    pin: list[str],
) -> dict[str, tuple[float, float, float, float]]:
    """Ceiling and churnscale servers alternately ``rounds`` times (best round kept: the
    machine is shared), then the textbook service once."""
    best: dict[str, tuple[float, float, float, float]] = {}
    for _ in range(rounds):
        for kind in (k for k in urls if k != "textbook"):
            result = wrk(urls[kind], script, seconds, running[kind], pin)
            if kind not in best or result[0] > best[kind][0]:
                best[kind] = result
    if "textbook" in urls:
        best["textbook"] = wrk(urls["textbook"], script, seconds, running["textbook"], pin)
    return best


def customer() -> dict[str, Any]:
    row = generate_table(1, 42).drop_columns(["churned"]).to_pylist()[0]
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in row.items()}


def parts(models: dict[str, LightGBMModel], body: bytes) -> list[tuple[str, float]]:
    """Microseconds per call of each hot-path step, measured in this process."""
    import orjson

    from churnscale.config import Settings
    from churnscale.serving.service import PredictionService

    services = {
        name: PredictionService(model, Settings(predictor="compiled"))
        for name, model in models.items()
    }
    first = next(iter(services.values()))
    x = first.decoder.decode(body)
    checks = dict.fromkeys(first.decoder.features, float)

    def orjson_loop() -> dict[str, Any]:
        data = orjson.loads(body)
        for name, kind in checks.items():
            value = data.get(name)
            if value is not None and not isinstance(value, kind | int | str | bool):
                raise ValueError(name)
        return dict(data)

    def per_call(function: Any, number: int = 20_000) -> float:
        return min(timeit.repeat(function, number=number, repeat=3)) / number * 1e6

    steps = [
        ("validate: msgspec Struct from schema", per_call(lambda: first.decoder.decode(body))),
        ("validate: orjson.loads + per-field loop", per_call(orjson_loop)),
        ("encode_one (dict → float64 row)", per_call(lambda: first.encode(x))),
    ]
    for name, service in services.items():
        steps += _tree_steps(name, service, x, per_call)
    return steps


def _tree_steps(name: str, service: Any, x: Any, per_call: Any) -> list[tuple[str, float]]:
    """One model's trees (LightGBM with one thread, the compiled entry point) and answer."""
    row = service.encode(x)
    one = row.reshape(1, -1)
    booster = service.predictor.model.booster
    return [
        (
            f"{name}: trees, LightGBM predict, num_threads=1",
            per_call(lambda: booster.predict(one, num_threads=1), 2_000),
        ),
        (
            f"{name}: trees, lleaves compiled, entry point",
            per_call(lambda: service.predictor.predict_one(row)),
        ),
        (
            f"{name}: whole answer (encode + trees + dict)",
            per_call(lambda: service.answer(x, reasons=False)),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pin", action="store_true", help="Servers on core 0, wrk on core 1.")
    parser.add_argument("--only", default=",".join(CHOICES), help="Comma-separated servers.")
    parser.add_argument("--retrain", action="store_true", help="Train the default model afresh.")
    parser.add_argument("--child", choices=["ceiling", "textbook"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pipeline", default="")
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.port, args.pipeline)
        return
    only = [c for c in args.only.split(",") if c]
    if not only or set(only) - set(CHOICES):
        raise SystemExit(f"--only: comma-separated names from {CHOICES}")
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/serve.py needs wrk on PATH (Debian: apt-get install wrk)")
    workers = 1 if args.pin else args.workers
    server_pin, wrk_pin = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if args.pin else ([], [])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundles = {"churnscale 100": root / "model"}
        train_100_trees(root)
        if "default" in only:
            bundles["churnscale default"] = default_model(retrain=args.retrain)
        if "100" not in only:
            del bundles["churnscale 100"]
        models = {kind: LightGBMModel.load(path) for kind, path in bundles.items()}
        pipeline = make_textbook(root) if "textbook" in only else root
        body = json.dumps(customer()).encode()
        (root / "body.json").write_bytes(body)
        script = root / "post.lua"
        script.write_text(LUA.format(body=root / "body.json"))
        kinds = ["ceiling", *bundles, *(["textbook"] if "textbook" in only else [])]
        ports = {k: 18_700 + i for i, k in enumerate(kinds)}
        urls = {k: f"http://127.0.0.1:{port}/v1/predict" for k, port in ports.items()}
        load_before = os.getloadavg()
        running = {
            k: start(k, ports[k], workers, bundles.get(k, root), pipeline, server_pin)
            for k in kinds
        }
        try:
            for kind in kinds:
                wait_ready(urls[kind], running[kind][0])
            time.sleep(1.0)
            results = measure(urls, script, args.seconds, args.rounds, running, wrk_pin)
        finally:
            for processes in running.values():
                for process in processes:
                    process.terminate()
            for processes in running.values():
                for process in processes:
                    process.wait(timeout=30)
        load_after = os.getloadavg()
        steps = parts(models, body)
    forests = {kind: Forest.of(model) for kind, model in models.items()}
    report(results, steps, workers, args.pin, forests, (load_before[0], load_after[0]))


def report(
    results: dict[str, tuple[float, float, float, float]],
    steps: list[tuple[str, float]],
    workers: int,
    pinned: bool,
    forests: dict[str, Forest],
    load: tuple[float, float],
) -> None:
    ceiling = results["ceiling"][0]
    textbook = results.get("textbook")
    where = "servers on core 0, wrk on core 1" if pinned else "unpinned"
    print(
        f"POST /v1/predict, one customer, wrk -t2 -c32, {workers} process(es) per server, "
        f"{where}, {os.cpu_count()} cores; load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    for kind, forest in forests.items():
        print(f"{kind}: {forest}")
    print(
        f"{'server':<20}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'× ceiling':>11}"
        f"{'× textbook':>12}{'CPU µs/req':>12}{'textbook CPU ×':>16}"
    )
    for kind, (rate, p50, p99, cpu) in results.items():
        by_textbook = f"{rate / textbook[0]:>12.1f}" if textbook else f"{'—':>12}"
        cpu_ratio = f"{textbook[3] / cpu:>16.1f}" if textbook else f"{'—':>16}"
        print(
            f"{kind:<20}{rate:>10,.0f}{p50:>9.2f}{p99:>9.2f}{rate / ceiling:>11.2f}"
            f"{by_textbook}{cpu:>12.1f}{cpu_ratio}"
        )
    print()
    print(f"{'hot-path step (in process)':<62}{'µs/call':>9}")
    for name, micros in steps:
        print(f"{name:<62}{micros:>9.2f}")


if __name__ == "__main__":
    main()
