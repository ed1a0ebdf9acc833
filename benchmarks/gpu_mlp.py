"""The MLP on one GPU against the CPU: training rows/s at batch 16,384 and 65,536, fp32 and
bf16, and the hold-out AUC of each run beside the CPU run's on the same data and batch.

Every run is the product's own path, ``fit_mlp`` on a stored dataset: the split, the
Preprocessor fitted over the training side, each rank's shard read from the row groups and
encoded, moved to the device once, trained, the hold-out scored. Data is made by the
generator and ingested once (reused from ``--data-dir``). rows/s is the training side's rows
per second of an epoch (its training steps and its validation pass), the median over epochs
2..E as the product's rank 0 timed them (the first epoch also pays CUDA's warm-up); read, place
and wall seconds show the rest of the data path. The CPU reference uses every core
(``threads = os.cpu_count()``) in one process.

    python benchmarks/gpu_mlp.py --device cuda                       # on a GPU machine
    python benchmarks/gpu_mlp.py --device cpu --rows 20000 --epochs 2  # a check that it runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import GeneratorSpec, generate
from churnscale.data.writers import write_batches
from churnscale.neural import MlpParams, fit_mlp
from churnscale.neural.device import resolve_device

GOAL_ROWS_S = 8_000_000  # issue 22: one H200 at batch 65,536
GOAL_AUC = 0.002
#: issue 22's anchor: plain PyTorch on one H200, same network shape, data resident (not this run)
ANCHOR = {16_384: 4_600_000, 65_536: 16_400_000}


@dataclass
class Run:
    """One ``fit_mlp`` and what it measured."""

    label: str
    device: str
    batch: int
    precision: str
    rows_s: float
    auc: float
    read_s: float
    place_s: float
    wall_s: float


def dataset_for(rows: int, data_dir: Path) -> Path:
    """Generate and ingest ``rows`` customers once; later runs reuse the files."""
    raw, ds = data_dir / f"raw-{rows}.parquet", data_dir / f"ds-{rows}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not raw.exists():
        threads = min(os.cpu_count() or 1, 8)
        write_batches(generate(GeneratorSpec(rows, 0), threads=threads), raw)
    if not ds.exists():
        ingest(str(raw), ds, hints=SchemaHints(target="churned"))
    return ds


def measure(label: str, dataset: Path, params: MlpParams) -> Run:
    """Train once with ``params``; the steady epoch rate, hold-out AUC and data-path times."""
    began = time.perf_counter()
    result = fit_mlp(dataset, params=params)
    wall = time.perf_counter() - began
    assert result is not None  # one process: this is rank 0
    timing = result.timing
    steady = timing["epoch_seconds"][1:] or timing["epoch_seconds"]
    return Run(
        label,
        timing["device"],
        params.batch_size,
        params.precision,
        timing["epoch_rows"] / statistics.median(steady),
        float(roc_auc_score(result.y_holdout, result.scores)),
        timing["read_seconds"],
        timing["place_seconds"],
        wall,
    )


def table(runs: list[Run], cpu: dict[int, Run]) -> str:
    head = (
        f"{'run':<14}{'batch':>8} {'prec':<5}{'train rows/s':>15}{'x CPU':>8}{'x goal':>8}"
        f"{'anchor':>12}{'AUC':>9}{'dAUC':>9}{'read s':>8}{'place s':>8}{'wall s':>8}"
    )
    lines = [head, "-" * len(head)]
    for run in runs:
        base = cpu[run.batch]
        anchor = f"{ANCHOR[run.batch]:,}" if run.device.startswith("cuda") else "-"
        lines.append(
            f"{run.label:<14}{run.batch:>8,} {run.precision:<5}{run.rows_s:>15,.0f}"
            f"{run.rows_s / base.rows_s:>7.2f}x{run.rows_s / GOAL_ROWS_S:>7.2f}x{anchor:>12}"
            f"{run.auc:>9.4f}{run.auc - base.auc:>+9.4f}{run.read_s:>8.1f}{run.place_s:>8.2f}"
            f"{run.wall_s:>8.1f}"
        )
    return "\n".join(lines)


def verdict(runs: list[Run], cpu: dict[int, Run]) -> list[str]:
    lines = []
    for run in runs:
        if run.label == "cpu reference" or run.batch != 65_536:
            continue
        fast = run.rows_s >= GOAL_ROWS_S
        close = abs(run.auc - cpu[run.batch].auc) <= GOAL_AUC
        lines.append(
            f"goal, batch 65,536 {run.precision}: {run.rows_s:,.0f} rows/s "
            f"{'>=' if fast else '<'} 8,000,000 ({'met' if fast else 'missed'}); "
            f"|dAUC| {abs(run.auc - cpu[run.batch].auc):.4f} "
            f"{'<=' if close else '>'} {GOAL_AUC} ({'met' if close else 'missed'})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu (the device runs)")
    parser.add_argument("--rows", type=int, default=4_000_000, help="generated customers")
    parser.add_argument("--batches", type=int, nargs="+", default=[16_384, 65_536])
    parser.add_argument("--epochs", type=int, default=3, help="every run trains this many")
    parser.add_argument("--learning-rate", type=float, default=MlpParams().learning_rate)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/churnscale-gpu-mlp"))
    args = parser.parse_args()
    kind = resolve_device(args.device)
    cores = os.cpu_count() or 1
    began = time.perf_counter()
    dataset = dataset_for(args.rows, args.data_dir)
    made = time.perf_counter() - began
    name = torch.cuda.get_device_name() if kind == "cuda" else "CPU"
    print(
        f"device {kind} ({name}), torch {torch.__version__}, {cores} CPU cores; "
        f"{args.rows:,} generated rows (data made or found in {made:.0f} s); "
        f"{args.epochs} epochs a run, learning rate {args.learning_rate:g}",
        flush=True,
    )
    base = MlpParams(
        max_epochs=args.epochs, patience=args.epochs, learning_rate=args.learning_rate
    )  # no early stop: every run trains the same epochs
    runs: list[Run] = []
    cpu: dict[int, Run] = {}
    for batch in args.batches:
        reference = replace(base, batch_size=batch, device="cpu", threads=cores)
        cpu[batch] = measure("cpu reference", dataset, reference)
        runs.append(cpu[batch])
        print(table(runs[-1:], cpu).splitlines()[-1], flush=True)
        for precision in ("fp32", "bf16"):
            threads = 1 if kind == "cuda" else cores
            params = replace(
                base, batch_size=batch, device=kind, precision=precision, threads=threads
            )
            runs.append(measure(kind, dataset, params))
            print(table(runs[-1:], cpu).splitlines()[-1], flush=True)
    print()
    print(table(runs, cpu))
    print(f"anchor: plain PyTorch on one H200, issue 22 (not this run); goal {GOAL_ROWS_S:,}")
    if kind != "cuda":  # a smoke run: the rows/s goal is one H200's
        print("goal not judged: no GPU in this run (the goal is for one H200 at batch 65,536)")
        return
    for line in verdict(runs, cpu):
        print(line)


if __name__ == "__main__":
    main()
