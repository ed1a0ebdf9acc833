"""A ``churnscale serve`` subprocess on a free 127.0.0.1 port, stopped by its PID."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``churnscale serve`` process."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_server(bundle: Path, *extra: str, timeout: float = 90.0) -> Server:
    """Start ``churnscale serve`` on a free port and wait until /readyz answers 200.

    With ``--workers N`` each process opens the port at once and warms its model behind it, and
    the kernel hands each new connection to any of them: wait for 10 x N ready answers in a row,
    each on a fresh connection, so that a still-warming worker is missed with odds 2^-20 or less.
    """
    port = free_port()
    command = [sys.executable, "-m", "churnscale", "serve", "--model", str(bundle)]
    process = subprocess.Popen([*command, "--port", str(port), *extra])
    workers = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else 1
    needed, streak = (1 if workers == 1 else 10 * workers), 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            ready = False
        streak = streak + 1 if ready else 0
        if streak >= needed:
            return Server(process, port)
        if not ready:
            time.sleep(0.2)
    stop_server(Server(process, port))
    raise RuntimeError("server did not become ready")


def stop_server(server: Server) -> None:
    """Stop the server process by its PID."""
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
