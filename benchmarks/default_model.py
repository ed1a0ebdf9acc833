"""The model a user gets: ``churnscale generate`` then ``churnscale train`` with every default.

Both commands run as a user runs them (subprocesses, no flag but ``--no-register --out``), on
the generator's default 100,000 customers (seed 0). Training takes minutes on a loaded machine,
so the bundle is kept under ``--cache`` (default ``~/.cache/churnscale-bench``) with a key of
the code that decides the model (``src/churnscale/{training,model,features}``, the ``train``
command), LightGBM's version and the rows: a later benchmark run reuses it until that code
changes; ``--retrain`` (in the benchmarks that use it) trains afresh.

    .venv/bin/python benchmarks/default_model.py [--rows 100000] [--retrain]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from churnscale.model.lightgbm import LightGBMModel

SRC = Path(__file__).resolve().parents[1] / "src" / "churnscale"
DECIDING = ("training", "model", "features", "commands/train.py")
CACHE = Path.home() / ".cache" / "churnscale-bench"


@dataclass(frozen=True)
class Forest:
    """A model's size: what a prediction walks."""

    trees: int
    leaves: int

    @classmethod
    def of(cls, model: LightGBMModel) -> Forest:
        info = model.booster.dump_model()["tree_info"]
        return cls(len(info), sum(int(tree["num_leaves"]) for tree in info))

    def __str__(self) -> str:
        return f"{self.trees} trees, {self.leaves:,} leaves"


def code_key(rows: int) -> str:
    """SHA-256 (16 hex) of the code deciding the default model, LightGBM's version and rows."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"rows={rows}|lightgbm {version('lightgbm')}".encode())
    for part in DECIDING:
        root = SRC / part
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def default_model(rows: int = 100_000, *, retrain: bool = False, cache: Path = CACHE) -> Path:
    """The bundle ``churnscale train`` makes with its defaults on ``rows`` generated customers."""
    bundle = cache / f"default-{rows}-{code_key(rows)}"
    if bundle.exists() and not retrain:
        print(f"default model: reusing {bundle}", file=sys.stderr)
        return bundle
    cache.mkdir(parents=True, exist_ok=True)
    staged = cache / f".{bundle.name}.{os.getpid()}"  # renamed into place whole
    try:
        with tempfile.TemporaryDirectory(prefix="churnscale-default-") as tmp:
            env = {**os.environ, "CHURNSCALE_HOME": str(Path(tmp) / "home")}
            data = Path(tmp) / "customers.parquet"
            cli = [sys.executable, "-m", "churnscale"]
            generate = [*cli, "generate", "--rows", str(rows), "--out", str(data)]
            subprocess.run(generate, env=env, check=True)
            print(f"default model: training on {rows:,} rows (minutes)", file=sys.stderr)
            train = [*cli, "train", str(data), "--no-register", "--out", str(staged)]
            subprocess.run(train, env=env, check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(bundle, ignore_errors=True)
        os.replace(staged, bundle)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    bundle = default_model(args.rows, retrain=args.retrain)
    print(f"{bundle}: {Forest.of(LightGBMModel.load(bundle))}")


if __name__ == "__main__":
    main()
