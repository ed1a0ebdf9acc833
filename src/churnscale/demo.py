"""``make demo``: the main job end to end on the embedded synthetic data."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def run(*args: str) -> None:
    """Run one ``churnscale`` command, stopping the demo if it fails."""
    command = [sys.executable, "-m", "churnscale", *args]
    print("$ churnscale " + " ".join(args), flush=True)  # noqa: T201
    subprocess.run(command, check=True)


def main() -> None:
    """Generate data, ingest it and profile it (later stages extend this)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".churnscale/demo"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    raw = args.dir / "customers.csv"
    dataset = args.dir / "dataset"
    run("generate", "--rows", str(args.rows), "--format", "csv", "--out", str(raw))
    run("ingest", str(raw), "--out", str(dataset), "--target", "churned", "--id", "customer_id")
    run("profile", str(dataset))
    serve_demo(args.dir)


def serve_demo(directory: Path, *, customers: int = 5) -> None:
    """Start the service on a free port with ``<dir>/model``, predict a few customers, stop it.

    Trains a small model first when the demo has not made one (until training joins the demo).
    """
    import socket
    import urllib.request

    import orjson

    from churnscale.data.synthetic import generate_table

    model = directory / "model"
    if not model.is_dir():
        _train_small_model(directory, model)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    print(f"$ churnscale serve --model {model} --port {port}", flush=True)  # noqa: T201
    command = [sys.executable, "-m", "churnscale", "serve", "--model", str(model)]
    server = subprocess.Popen([*command, "--port", str(port)])
    try:
        _wait_ready(url, server)
        rows = generate_table(customers, seed=2026).drop_columns(["churned"]).to_pylist()
        for row in rows:
            body = orjson.dumps(row)  # dates become ISO 8601 text
            request = urllib.request.Request(
                f"{url}/v1/predict", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = orjson.loads(response.read())
            print(  # noqa: T201
                f"POST /v1/predict {answer['customer_id']}: "
                f"churn_probability={answer['churn_probability']:.4f}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _train_small_model(directory: Path, model: Path) -> None:
    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import generate_table
    from churnscale.data.writers import write_batches
    from churnscale.training.local import TrainParams, train_local

    print("training a small demo model (50,000 customers)", flush=True)  # noqa: T201
    raw = directory / "model-train.parquet"
    write_batches(generate_table(50_000, seed=1).to_batches(), raw)
    dataset = directory / "model-train"
    ingest(str(raw), dataset, hints=SchemaHints(target="churned", id="customer_id"))
    params = TrainParams(learning_rate=0.1, max_rounds=100, early_stopping_rounds=20)
    train_local(dataset, params=params).model.save(model)


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SystemExit("the service did not become ready")


if __name__ == "__main__":
    main()
