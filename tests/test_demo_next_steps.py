"""Issue 24: after ``make demo`` the README's next commands work in the same shell.

The demo and ``make serve`` run as ``make`` would run them: their recipes are expanded by
``make -n`` (setup assumed done) and executed in a fresh working directory with the venv's
tools, on ``DEMO_ROWS=2000``. Then ``make serve`` answers ``/v1/predict``, ``churnscale models
list`` shows ``churn`` with the alias ``champion`` and ``churnscale evaluate churn@champion …``
scores the demo's next-month file, with no setting exported in between.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from churnscale.data.synthetic import generate_table

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def recipe(target: str, **variables: str) -> list[str]:
    """The command ``make TARGET`` runs (one line), with the venv's tools as ``$(BIN)``."""
    make = shutil.which("make")
    assert make is not None, "make is needed to read the Makefile's recipes"
    assigned = [f"{k}={v}" for k, v in {"BIN": str(BIN), **variables}.items()]
    done = subprocess.run(
        [make, "-C", str(REPO), "-n", "-s", "-o", ".venv/.installed", target, *assigned],
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = [line for line in done.stdout.splitlines() if line.strip()]
    return shlex.split(line)


def shell_env() -> dict[str, str]:
    """The environment of a new user's shell: no CHURNSCALE_* or MLflow setting exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNSCALE_", "MLFLOW_"))}
    env["OMP_NUM_THREADS"] = "1"  # LightGBM on a shared 2-core machine: no thread contention
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_demo_then_serve_models_list_and_evaluate(tmp_path: Path, migrated_store: Path) -> None:
    env = shell_env()
    home = tmp_path / ".churnscale"  # the default home, relative to the working directory
    home.mkdir()
    with sqlite3.connect(migrated_store) as source, sqlite3.connect(home / "mlflow.db") as copy:
        source.backup(copy)  # an already-migrated store: saves MLflow's first-run migration
    source.close()
    copy.close()

    demo = run(recipe("demo", DEMO_ROWS="2000"), tmp_path, env)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "churn/1 is churn@champion" in demo.stdout
    fresh = ".churnscale/demo/next-month.parquet"
    assert f"churnscale evaluate churn@champion {fresh}" in demo.stdout

    port = _free_port()
    serve = recipe("serve")
    assert serve[-2:] == ["--model", "churn@champion"]
    server = subprocess.Popen([*serve, "--port", str(port)], cwd=tmp_path, env=env)
    try:
        with ThreadPoolExecutor(2) as pool:
            listed = pool.submit(run, [str(BIN / "churnscale"), "models", "list"], tmp_path, env)
            judged = pool.submit(
                run,
                [str(BIN / "churnscale"), "evaluate", "churn@champion", fresh, "--json"],
                tmp_path,
                env,
            )
            answer = _predict_one(server, port)
            models, evaluation = listed.result(), judged.result()
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert answer["model_version"].startswith("churn/1")
    assert 0.0 <= answer["churn_probability"] <= 1.0
    assert models.returncode == 0, models.stderr
    (row,) = [line for line in models.stdout.splitlines() if line.strip("│ ").startswith("churn")]
    assert "champion" in row, models.stdout
    assert evaluation.returncode == 0, evaluation.stderr
    summary = orjson.loads(evaluation.stdout)
    assert summary["model"] == "churn@champion" and 0.5 < summary["metrics"]["roc_auc"] <= 1.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _predict_one(server: subprocess.Popen[bytes], port: int) -> dict[str, object]:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, f"make serve exited with {server.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    customer = generate_table(1, seed=5).drop_columns(["churned"]).to_pylist()[0]
    response = httpx.post(f"{url}/v1/predict", content=orjson.dumps(customer), timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer
