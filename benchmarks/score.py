"""Batch scoring throughput, Parquet in → Parquet out, for a 100-tree model and the default one.

Two models, each measured on the same rows: a model of exactly 100 rounds (``train_100_trees``)
and the model ``churnscale train`` makes with every default on the generator's 100,000
customers (``benchmarks/default_model.py``, cached; ``--retrain`` trains it afresh; ``--only``
picks one). For each, the first run compiles the trees (lleaves) into an empty cache; a later
run, as every ``churnscale score`` after the first for a model, loads the compiled object from
the cache. Beside it, in the same run and on the same rows: the compiled trees alone and
LightGBM's own ``predict`` on the encoded matrix (all threads: the baseline of the ratios), the
whole scoring run with LightGBM as the predictor, and the run on a 2-worker local Dask cluster.
Wall-clock rows/s, and the process CPU time per row (this process and, for the cluster, not
its workers), because the machine is shared and loaded.

    .venv/bin/python benchmarks/score.py [--rows 1000000] [--only 100,default] [--no-cluster]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import GeneratorSpec, generate, generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.predictor import Predictor
from churnscale.scoring import score
from churnscale.scoring.cluster import score_on_cluster
from churnscale.training.local import TrainParams, train_local

sys.path.insert(0, str(Path(__file__).parent))
from default_model import Forest, default_model


def train_100_trees(root: Path) -> LightGBMModel:
    """A model of exactly 100 trees (no early stop) on 60,000 generated customers."""
    write_batches(generate_table(60_000, 5).to_batches(), root / "train.parquet")
    ingest(str(root / "train.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    params = TrainParams(learning_rate=0.1, max_rounds=100, early_stopping_rounds=1_000)
    model = train_local(root / "ds", params=params).model
    model.save(root / "model")
    return LightGBMModel.load(root / "model")


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and process CPU seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(
    model: LightGBMModel, bundle: Path, data: Path, root: Path, cluster: bool
) -> list[tuple[str, float, float]]:
    """(what, wall s, CPU s) of each way of scoring ``data`` with ``model``; LightGBM's own
    predict on the encoded matrix last (the baseline)."""
    results: list[tuple[str, float, float]] = []
    home = root / f"home-{bundle.name}"
    compiled = Settings(home=home, predictor="compiled")  # empty compile cache

    def run(name: str, call: Callable[[Path], object]) -> None:
        out = root / "out.parquet"
        out.unlink(missing_ok=True)  # score refuses to overwrite
        results.append((name, *timed(lambda: call(out))))

    run(
        "score, compiled trees (first run: compiles)",
        lambda o: score(str(data), model, o, settings=compiled),
    )
    run(
        "score, compiled trees (later run: cached object)",
        lambda o: score(str(data), model, o, settings=compiled),
    )
    predictor = Predictor(model, kind="compiled")
    run(
        "score, compiled trees (compiled once)",
        lambda o: score(str(data), model, o, settings=compiled, predictor=predictor),
    )
    run(
        "score, LightGBM predict",
        lambda o: score(str(data), model, o, settings=Settings(home=home, predictor="lightgbm")),
    )
    if cluster:
        run(
            "score --cluster local:2 (start + compile incl.)",
            lambda o: score_on_cluster(
                str(data), str(bundle), o, settings=compiled, cluster="local:2"
            ),
        )
    matrix = model.preprocessor.transform(pq.read_table(data))
    results.append(
        (
            "compiled trees only (encoded matrix in RAM)",
            *timed(lambda: predictor.predict_matrix(matrix)),
        )
    )
    results.append(
        (
            "LightGBM predict only (encoded matrix in RAM)",
            *timed(lambda: model.booster.predict(matrix)),
        )
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", default="100,default", help="Comma-separated: 100, default.")
    parser.add_argument("--retrain", action="store_true", help="Train the default model afresh.")
    parser.add_argument("--no-cluster", action="store_true", help="Skip the local:2 row.")
    args = parser.parse_args()
    only = [c for c in args.only.split(",") if c]
    if not only or set(only) - {"100", "default"}:
        raise SystemExit("--only: comma-separated names from 100, default")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundles: dict[str, Path] = {}
        if "100" in only:
            train_100_trees(root)
            bundles["100 trees"] = root / "model"
        if "default" in only:
            bundles["default model"] = default_model(retrain=args.retrain)
        data = root / "score.parquet"
        write_batches(generate(GeneratorSpec(args.rows, 11)), data)
        rows = pq.read_metadata(data).num_rows
        tables = {}
        for name, bundle in bundles.items():
            model = LightGBMModel.load(bundle)
            tables[name] = (
                Forest.of(model),
                measure(model, bundle, data, root, not args.no_cluster),
            )
    load_after = os.getloadavg()
    print(
        f"{rows:,} rows, {os.cpu_count()} cores; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after"
    )
    for name, (forest, results) in tables.items():
        print(f"\n{name}: {forest}")
        print(f"{'what':<50}{'rows/s':>12}{'vs LightGBM predict':>22}{'CPU µs/row':>12}")
        baseline = rows / results[-1][1]
        for what, wall, cpu in results:
            ratio = (rows / wall) / baseline
            print(f"{what:<50}{rows / wall:>12,.0f}{ratio:>21.2f}x{cpu / rows * 1e6:>12.2f}")


if __name__ == "__main__":
    main()
