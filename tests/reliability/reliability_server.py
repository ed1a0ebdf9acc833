"""A ``churnscale serve`` subprocess on a free 127.0.0.1 port, configured by environment
variables, its output kept in a log file; stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PREDICT_KEY = "predict-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef00"


@dataclass(frozen=True)
class Bundles:
    """A model root and the manifest versions of its two good bundles ``a`` and ``b``."""

    root: Path
    version_a: str
    version_b: str


def bearer(key: str) -> dict[str, str]:
    """The header that presents ``key``."""
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``churnscale serve`` process and the file its output goes to."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")


def launch(log: Path, env: dict[str, str], *args: str, cwd: Path | None = None) -> Server:
    """Start ``churnscale serve`` with ``CHURNSCALE_*`` settings in ``env`` (no waiting), in
    the working directory ``cwd`` (default: this process's)."""
    port = free_port()
    command = [sys.executable, "-m", "churnscale", "serve", "--port", str(port), *args]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )
    return Server(process, port, log)


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    """Wait until /readyz answers 200 (the model is loaded and warm)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.process.returncode}:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(server)
    raise RuntimeError(f"server did not become ready:\n{server.output()}")


def start(log: Path, env: dict[str, str], *args: str, cwd: Path | None = None) -> Server:
    """Start the server and wait until it is ready."""
    server = launch(log, env, *args, cwd=cwd)
    wait_ready(server)
    return server


def stop(server: Server, timeout: float = 30.0) -> None:
    """SIGTERM the server by its PID; SIGKILL if it does not exit in ``timeout``."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
