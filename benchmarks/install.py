"""Install sizes (core, serving, full) and the cold start of ``churnscale serve`` to /readyz 200.

Sizes are the bytes the distributions' RECORD files list in site-packages: the full
development venv (every installed distribution), the core (``pyproject.toml``'s
dependencies and what they need), the core with every extra, and the serving install
(``requirements/serve.in``, what deploy/Dockerfile installs). The largest distributions of the
core and the serving install are listed.

Cold start: a bundle is trained here, then ``churnscale serve --model BUNDLE`` is started
``--starts`` times in a venv of the serving install alone (made of symlinks, as
tests/test_extras.py does) with a shared churnscale home, so the compiled trees are cached
after the first start; the time from process start to the first /readyz 200 is measured
(polled every 10 ms), with the server's CPU time (user + system, from its rusage).

Usage: .venv/bin/python benchmarks/install.py [--starts 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import distributions
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from blocker.installs import (
    ROOT,
    canonical,
    closure,
    core_requirements,
    extra_requirements,
    file_requirements,
    make_venv,
    size_bytes,
)

EXTRAS = ("dask", "neural", "online", "tune", "export", "grpc")
MB = 1_000_000


def sizes() -> dict[str, dict]:  # type: ignore[type-arg]
    """Each install's distributions."""
    every = {canonical(d.metadata["Name"]): d for d in distributions()}
    every.pop("churnscale", None)
    core = closure(core_requirements())
    extras = [r for e in EXTRAS for r in extra_requirements(e)]
    return {
        "full development venv": every,
        "core + every extra": closure(core_requirements() + extras),
        "core (pip install churnscale)": core,
        "serving (requirements/serve.in)": closure(
            file_requirements(ROOT / "requirements" / "serve.in")
        ),
    }


def largest(dists: dict, count: int = 12) -> str:  # type: ignore[type-arg]
    ranked = sorted(((size_bytes({n: d}), n) for n, d in dists.items()), reverse=True)
    return ", ".join(f"{n} {b / MB:.0f}" for b, n in ranked[:count])


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str, process: subprocess.Popen[bytes], limit: float = 120) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("not ready in time")


def cold_start(python: Path, bundle: Path, home: Path) -> tuple[float, float]:
    """Seconds from process start to /readyz 200, and the server's CPU seconds until then."""
    port = _port()
    env = {"PATH": os.environ["PATH"], "CHURNSCALE_HOME": str(home), "HOME": str(home)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), "-m", "churnscale", "serve", "--model", str(bundle), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ready = _ready(f"http://127.0.0.1:{port}", process) - started
    with open(f"/proc/{process.pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return ready, cpu


def imports_of_the_service() -> list[str]:
    """Heavy modules ``churnscale serve``'s import path brings in the full venv."""
    probe = (
        "import sys, churnscale.commands.serve, churnscale.serving.app, churnscale.serving.server;"
        "import churnscale.model.loading, churnscale.serving.fastpath;"
        "print(' '.join(m for m in ('sklearn','matplotlib','scipy','pandas','lightgbm','mlflow',"
        "'torch','dask','optuna','river','onnx') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    installs = sizes()
    for name, dists in installs.items():
        print(f"{name}: {len(dists)} distributions, {size_bytes(dists) / MB:,.0f} MB")
    for name in ("core (pip install churnscale)", "serving (requirements/serve.in)"):
        print(f"largest in {name} (MB): {largest(installs[name])}")
    print(f"the service's import path in the full venv imports: {imports_of_the_service()}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="install-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    python = make_venv(root / "serve-venv", installs["serving (requirements/serve.in)"])
    cli = [sys.executable, "-m", "churnscale"]
    env = {**os.environ, "CHURNSCALE_HOME": str(root / "home"), "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([*cli, "generate", "--rows", "20000", "--out", str(root / "c.parquet")],
                   env=env, check=True, capture_output=True)  # fmt: skip
    subprocess.run(
        [*cli, "train", str(root / "c.parquet"), "--target", "churned", "--id", "customer_id",
         "--no-register", "--out", str(root / "bundle")],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    first, first_cpu = cold_start(python, root / "bundle", root / "home")
    print(f"first start (compiles the trees): {first:.2f} s wall, {first_cpu:.2f} s CPU")
    runs = [cold_start(python, root / "bundle", root / "home") for _ in range(args.starts)]
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    print(
        f"cold start, compiled model cached ({args.starts} starts): wall median "
        f"{statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); "
        f"CPU median {statistics.median(cpus):.2f} s (min {min(cpus):.2f})"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
