"""Helpers of the data, artifact, registry and training rows: datasets, a live service."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.training.local import TrainParams

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from live_server import Server, free_port, stop_server

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


def settings_with_store(home: Path, template: Path) -> Settings:
    """Settings of a registry at ``home`` that starts as a copy of the ``template`` store."""
    home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(template) as source, sqlite3.connect(home / "mlflow.db") as target:
        source.backup(target)
    source.close()
    target.close()
    return Settings(home=home, tracking_uri=None)


def make_dataset(root: Path, rows: int, *, seed: int = 5, batch_rows: int = 262_144) -> Path:
    """Ingest ``rows`` generated customers into a stored dataset under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_batches(generate_table(rows, seed).to_batches(), root / "raw.parquet")
    hints = SchemaHints(target="churned")
    ingest(str(root / "raw.parquet"), root / "ds", hints=hints, batch_rows=batch_rows)
    return root / "ds"


#: The served process's limits, small so that R2's oversized requests are quick to send.
LIMITS = {"CHURNSCALE_MAX_BODY_BYTES": "1000000", "CHURNSCALE_MAX_BATCH_ROWS": "100"}
AUDIT_SITE = Path(__file__).with_name("audit_site")


@dataclass
class LiveService:
    """A ``churnscale serve`` process, its limits and its unpickling log (R12)."""

    server: Server
    unpickling_log: Path

    @property
    def url(self) -> str:
        return self.server.url

    def unpickled(self) -> list[dict[str, Any]]:
        """Every unpickling the server process did so far."""
        if not self.unpickling_log.exists():
            return []
        return [json.loads(line) for line in self.unpickling_log.read_text().splitlines()]


def start_service(bundle: Path, log: Path, timeout: float = 120.0) -> Server:
    port = free_port()
    env = {
        **os.environ,
        **LIMITS,
        "PYTHONPATH": os.pathsep.join([str(AUDIT_SITE), os.environ.get("PYTHONPATH", "")]),
        "CHURNSCALE_UNPICKLING_LOG": str(log),
    }
    command = [sys.executable, "-m", "churnscale", "serve", "--model", str(bundle)]
    process = subprocess.Popen([*command, "--port", str(port)], env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return Server(process, port)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(Server(process, port))
    raise RuntimeError("server did not become ready")
