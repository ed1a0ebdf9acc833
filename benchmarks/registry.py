"""Registry latency: register, cold/warm/offline resolve, each against verifying the bundle locally.

    .venv/bin/python benchmarks/registry.py --mb 50 --repeat 5

The baseline is ``verify_directory`` on the source bundle (SHA-256 of every byte), which every
resolve must do at least once; the ratio says what MLflow and the cache add on top.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.config import Settings
from churnscale.registry import Registry


def _median(
    fn: Callable[[], object], *, repeat: int, before: Callable[[], None] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bundle(root: Path, megabytes: int) -> Path:
    def fill(staging: Path) -> None:
        (staging / "model.bin").write_bytes(os.urandom(megabytes << 20))
        (staging / "metadata.json").write_text('{"data_fingerprint": "bench"}')

    publish_directory(root / "bundle", fill)
    return root / "bundle"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=50, help="bundle size in MiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    logging.getLogger("churnscale.registry").setLevel(logging.ERROR)  # one line per offline call
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(home=root / "home", tracking_uri=None)
        registry = Registry(settings)
        bundle = _bundle(root, args.mb)
        registry.list_models()  # create and migrate the store outside the timings

        def register() -> None:
            with registry.run(experiment="bench") as run:
                run.register_bundle(bundle, name="bench")

        rows = {
            "verify bundle locally (baseline)": _median(
                lambda: verify_directory(bundle), repeat=args.repeat
            )
        }
        rows["register (run + upload + version)"] = _median(register, repeat=args.repeat)
        registry.promote("bench", 1, alias="champion")
        clear = lambda: shutil.rmtree(registry.cache.root, ignore_errors=True)  # noqa: E731
        rows["resolve bench@champion, cold cache"] = _median(
            lambda: registry.resolve("bench@champion"), repeat=args.repeat, before=clear
        )
        registry.resolve("bench@champion")
        rows["resolve bench@champion, warm cache"] = _median(
            lambda: registry.resolve("bench@champion"), repeat=args.repeat
        )
        down = Registry(
            settings.model_copy(update={"tracking_uri": f"http://127.0.0.1:{_closed_port()}"})
        )
        rows["resolve bench@champion, registry down"] = _median(
            lambda: down.resolve("bench@champion"), repeat=args.repeat
        )
    base = rows["verify bundle locally (baseline)"]
    print(f"bundle {args.mb} MiB, median of {args.repeat}")
    print(f"{'operation':<42}{'seconds':>10}{'x baseline':>12}")
    for name, seconds in rows.items():
        print(f"{name:<42}{seconds:>10.3f}{seconds / base:>12.2f}")


if __name__ == "__main__":
    main()
