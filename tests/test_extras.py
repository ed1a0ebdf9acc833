"""The core install alone (``pip install churnscale``, no extras) runs the whole core pipeline,
never imports an extra's package, and names the extra to install when a command needs one.

The core install is a fresh venv holding only the distributions ``pyproject.toml``'s core
dependencies need (``blocker/installs.py``: symlinks into the development venv), plus an import
blocker that makes torch, river, onnx, optuna and dask unimportable and has every process write
what it tried to import and what it held at exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from blocker.installs import ROOT, closure, core_requirements, file_requirements, make_venv
from churnscale.extras import EXTRAS, MissingExtraError, installed, require

pytestmark = pytest.mark.integration


@dataclass
class Core:
    python: Path
    work: Path
    log: Path
    serve_python: Path

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {**keep, "CHURNSCALE_HOME": str(self.work / "home"),
                "CHURNSCALE_IMPORT_LOG": str(self.log)}  # fmt: skip

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "churnscale", *args], cwd=self.work, env=self.env(),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def start(self, *args: str, python: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(python or self.python), "-m", "churnscale", *args], cwd=self.work, env=self.env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def records(self) -> list[dict[str, list[str]]]:
        return [json.loads(p.read_text()) for p in sorted(self.log.glob("*.json"))]


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Core:
    root = tmp_path_factory.mktemp("core")
    serving = closure(file_requirements(ROOT / "requirements" / "serve.in"))
    with ThreadPoolExecutor(2) as pool:  # the two venvs are made side by side
        made = pool.submit(make_venv, root / "venv", closure(core_requirements()))
        serve_python = make_venv(root / "serve-venv", serving)
        python = made.result()
    (root / "work").mkdir()
    (root / "log").mkdir()
    return Core(python, root / "work", root / "log", serve_python)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


COMMANDS_NEEDING_EXTRAS = [
    (["train", "x.parquet", "--model", "mlp"], "train --model mlp", "torch", "neural"),
    (["train", "x.parquet", "--cluster", "local:2"], "train --cluster", "dask", "dask"),
    (["train", "x.parquet", "--time-budget", "60"], "train --time-budget", "optuna", "tune"),
    (["tune", "x.parquet", "--target", "churned"], "churnscale tune", "optuna", "tune"),
    (["score", "x.parquet", "--model", "churn/1", "--out", "o", "--cluster", "local:2"],
     "score --cluster", "dask", "dask"),
    (["learn", "--stream", "x.jsonl", "--model", "m", "--target", "churned"],
     "churnscale learn", "river", "online"),
    (["export", "churn/1", "--format", "onnx", "--out", "o"],
     "export --format onnx", "onnx", "export"),
]  # fmt: skip


@dataclass
class Pipeline:
    """What the core install did: each step's result, the prediction, the extras' error lines."""

    steps: dict[str, subprocess.CompletedProcess[str]]
    predicted: httpx.Response
    errors: list[tuple[int, str]]
    predicted_by_the_serving_install: httpx.Response


def _ready(server: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(
        f"not ready: {server.poll()} {server.communicate()[0] if server.poll() is not None else ''}"
    )


def _predict(core: Core, url: str) -> httpx.Response:
    row = pq.read_table(core.work / "c.parquet").slice(0, 1).to_pylist()[0]
    body = {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
    del body["churned"]
    return httpx.post(f"{url}/v1/predict", json=body, timeout=30)


@pytest.fixture(scope="module")
def pipeline(core: Core) -> Pipeline:
    """generate → train (registers churn/1) → score and serve side by side → predict; the
    commands that need an extra run meanwhile (they exit before reading anything)."""
    (core.work / "x.parquet").touch()
    (core.work / "x.jsonl").touch()
    failing = [core.start(*args) for args, *_ in COMMANDS_NEEDING_EXTRAS]
    steps = {"generate": core.run("generate", "--rows", "2000", "--out", "c.parquet")}
    steps["train"] = core.run(
        "train", "c.parquet", "--target", "churned", "--id", "customer_id", "--max-rounds", "25"
    )
    port, lean_port = _free_port(), _free_port()
    server = core.start("serve", "--model", "churn/1", "--port", str(port))
    lean = None
    try:
        steps["score"] = core.run("score", "c.parquet", "--model", "churn/1", "--out", "s.parquet")
        # the serving install (requirements/serve.in) serves the bundle score just fetched
        bundle = core.work / "home" / "bundles" / "churn" / "1"
        lean = core.start(
            "serve", "--model", str(bundle), "--port", str(lean_port), python=core.serve_python
        )
        _ready(server, f"http://127.0.0.1:{port}")
        predicted = _predict(core, f"http://127.0.0.1:{port}")
        _ready(lean, f"http://127.0.0.1:{lean_port}")
        predicted_lean = _predict(core, f"http://127.0.0.1:{lean_port}")
    finally:
        for process in (server, lean):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    errors = []
    for process in failing:
        output, _ = process.communicate(timeout=120)
        errors.append((process.returncode, output.strip()))
    return Pipeline(steps, predicted, errors, predicted_lean)


def test_the_core_install_has_none_of_the_extras(core: Core) -> None:
    blocked = [m for modules in EXTRAS.values() for m in modules if m != "safetensors"]
    site = next((core.python.parent.parent / "lib").glob("python*/site-packages"))
    present = sorted(p.name for p in site.iterdir() if p.name.split(".")[0] in blocked)
    assert present == []


def test_core_pipeline_generate_train_score_serve_predict(core: Core, pipeline: Pipeline) -> None:
    for name, step in pipeline.steps.items():
        assert step.returncode == 0, (name, step.stderr)
    assert "registered: churn/1" in pipeline.steps["train"].stdout + pipeline.steps["train"].stderr
    assert pq.read_metadata(core.work / "s.parquet").num_rows == 2000
    assert pipeline.predicted.status_code == 200, pipeline.predicted.text
    assert 0.0 < pipeline.predicted.json()["churn_probability"] < 1.0
    assert pipeline.predicted.headers["X-Model-Version"] == "churn/1"


def test_the_serving_install_serves_the_same_prediction(core: Core, pipeline: Pipeline) -> None:
    site = next((core.serve_python.parent.parent / "lib").glob("python*/site-packages"))
    absent = ["sklearn", "matplotlib", "sqlalchemy", "torch", "dask", "optuna", "river", "onnx"]
    assert [name for name in absent if (site / name).exists()] == []
    assert (site / "mlflow").is_dir()  # mlflow-skinny's REST client, for registry references
    lean = pipeline.predicted_by_the_serving_install
    assert lean.status_code == 200, lean.text
    assert lean.json()["churn_probability"] == pipeline.predicted.json()["churn_probability"]


def test_no_process_of_the_pipeline_imported_an_extra(core: Core, pipeline: Pipeline) -> None:
    steps = ("generate", "train", "score", "serve")
    records = [r for r in core.records() if r["argv"][1] in steps and "x.parquet" not in r["argv"]]
    assert {r["argv"][1] for r in records} == {"generate", "train", "score", "serve"}, records
    tried = [(r["argv"][1], r["attempted"], r["loaded"]) for r in records]
    assert [t for t in tried if t[1] or t[2]] == []


def test_each_command_needing_an_extra_exits_2_naming_it(pipeline: Pipeline) -> None:
    expected = [
        (2, f"error: {feature} needs the optional dependency {module!r}, which is not "
            f"installed: pip install 'churnscale[{extra}]'")
        for _, feature, module, extra in COMMANDS_NEEDING_EXTRAS
    ]  # fmt: skip
    assert pipeline.errors == expected


def test_require_names_the_extra() -> None:
    assert installed("json") and not installed("churnscale_no_such_module")
    with pytest.raises(MissingExtraError, match=r"pip install 'churnscale\[tune\]'") as caught:
        EXTRAS["tune"] = ("churnscale_no_such_module",)
        try:
            require("tune", feature="churnscale tune")
        finally:
            EXTRAS["tune"] = ("optuna",)
    assert (caught.value.extra, caught.value.module) == ("tune", "churnscale_no_such_module")
    assert isinstance(caught.value, ImportError)
