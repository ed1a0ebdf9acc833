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


if __name__ == "__main__":
    main()
