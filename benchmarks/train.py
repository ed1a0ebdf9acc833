"""Training benchmark: wall time, CPU time, peak RSS of the whole process tree and test AUC.

Compares, at each size: churnscale local (``train_local``), churnscale on a 2-worker
LocalCluster (``train_distributed``) and the in-memory baseline (pandas ``read_parquet`` +
``lightgbm.train`` on the same split and parameters). Every run is a fresh subprocess whose
process tree (workers included) is sampled every 0.1 s. Data is generated once and reused.

    .venv/bin/python benchmarks/train.py --rows 1000000 10000000
    .venv/bin/python benchmarks/train.py --rows 20000000 --only local --cap-gib 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from churnscale.training.local import TrainParams


def _flag(name: str, default: int) -> int:
    """A flag's value, read before argparse so that children build the same PARAMS."""
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


PARAMS = TrainParams(
    learning_rate=0.1,
    max_rounds=_flag("--max-rounds", 150),
    early_stopping_rounds=20,
    threads=_flag("--threads", 0),
)
KINDS = ("local", "dask", "memory")


def dataset_for(rows: int, data_dir: Path) -> Path:
    """Generate (CLI) and ingest ``rows`` customers once; later runs reuse the files."""
    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest

    raw, ds = data_dir / f"raw-{rows}.parquet", data_dir / f"ds-{rows}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not raw.exists():
        cli = [sys.executable, "-m", "churnscale", "generate", "--rows", str(rows)]
        subprocess.run([*cli, "--out", str(raw)], check=True)
    if not ds.exists():
        ingest(str(raw), ds, hints=SchemaHints(target="churned"))
    return ds


# ---- children: one training run each ---------------------------------------------------------
def run_local(dataset: Path) -> tuple[np.ndarray, np.ndarray, int]:
    from churnscale.training.local import train_local

    result = train_local(dataset, params=PARAMS)
    return result.y_holdout, result.scores, result.best_iteration


def run_dask(dataset: Path) -> tuple[np.ndarray, np.ndarray, int]:
    from churnscale.training.distributed import train_distributed

    result = train_distributed(dataset, cluster="local:2", params=PARAMS, memory_limit="10GiB")
    return result.y_holdout, result.scores, result.best_iteration


def run_memory(dataset: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The in-memory baseline: the whole dataset in pandas, then ``lightgbm.train``."""
    import lightgbm as lgb
    import pandas as pd

    from churnscale.data.store import load_info
    from churnscale.training.local import EARLY_STOP_FRACTION
    from churnscale.training.plan import TEST, TRAIN, VALID, SplitSpec, plan_split

    schema, info = load_info(dataset)
    plan = plan_split(
        dataset, schema, SplitSpec(seed=PARAMS.seed), early_stop_fraction=EARLY_STOP_FRACTION
    )
    sides = np.concatenate([g.sides for g in plan.groups])
    names = [c.name for c in schema.features]
    frame = pd.concat([pd.read_parquet(dataset / f, columns=names) for f in info.files])
    for column in frame.columns:
        dtype = frame[column].dtype
        if str(dtype).startswith(("date", "timestamp")) or dtype == "object":
            days = pd.to_datetime(frame[column]).astype("int64") // 86_400_000_000_000
            frame[column] = days.astype("float64")
        elif dtype == "str" or dtype == "string":
            frame[column] = frame[column].astype("category")
        elif dtype == "bool":
            frame[column] = frame[column].astype("float64")
    params = PARAMS.lightgbm_params()
    sets = {s: frame[sides == s] for s in (TRAIN, VALID, TEST)}
    del frame
    train = lgb.Dataset(sets[TRAIN], label=plan.labels[TRAIN], params=params)
    valid = lgb.Dataset(sets[VALID], label=plan.labels[VALID], reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=PARAMS.max_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(PARAMS.early_stopping_rounds, verbose=False)],
    )
    scores = booster.predict(sets[TEST], num_iteration=booster.best_iteration)
    return plan.labels[TEST], np.asarray(scores), booster.best_iteration


def breakdown(dataset: Path) -> None:
    """Where local training's memory goes: after each stage of ``train_local``'s own steps,
    the RSS growth (MiB), the RSS (GiB) and the peak RSS so far (GiB); 3 rounds."""
    import resource

    import lightgbm as lgb

    from churnscale.data.store import load_info
    from churnscale.training import local
    from churnscale.training.plan import SplitSpec, plan_split
    from churnscale.training.sequence import bin_sample_indices, fit_with_bin_sample

    stages: dict[str, tuple[float, float, float]] = {}
    last = [psutil.Process().memory_info().rss]

    def mark(name: str) -> None:
        now = psutil.Process().memory_info().rss
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        growth = round((now - last[0]) / 2**20, 1)
        stages[name] = (growth, round(now / 2**30, 3), round(peak / 2**30, 3))
        last[0] = now

    schema, _ = load_info(dataset)
    split = SplitSpec(seed=PARAMS.seed)
    plan = plan_split(dataset, schema, split, early_stop_fraction=local.EARLY_STOP_FRACTION)
    mark("split plan (side + label, 1 byte a row)")
    params = PARAMS.lightgbm_params()
    binning = local.data_params(params)
    indices = bin_sample_indices(plan.count(local.TRAIN), binning)
    pre, sample = fit_with_bin_sample(plan, schema, indices)
    mark("preprocessor fitted, bin sample kept")
    train, valid = local.binned_sides(plan, pre, binning, init_model=None, sample=sample)
    mark("train and valid binned, labels and sample freed")
    booster = lgb.Booster(params=params, train_set=train)
    booster.add_valid(valid, "valid")
    mark("booster")
    for _ in range(3):
        booster.update()
    mark("training state (3 rounds)")
    rows = int(sum(g.packed.size for g in plan.groups))
    print(json.dumps({"rows": rows, "growth_mib_rss_gib_peak_gib": stages}))


def child(kind: str, dataset: Path) -> None:
    from sklearn.metrics import roc_auc_score

    runner = {"local": run_local, "dask": run_dask, "memory": run_memory}[kind]
    start, cpu = time.perf_counter(), _cpu_seconds()
    y, scores, best = runner(dataset)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    auc = float(roc_auc_score(y, scores))
    result = {"wall_s": wall, "cpu_s": cpu, "auc": auc, "test_rows": int(y.size)}
    print(json.dumps({**result, "best_round": best}))


def _cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children (Dask workers)."""
    import resource

    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ---- parent: measure each child ---------------------------------------------------------------
def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and all its descendants."""
    total = 0
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:  # a process ended while we listed them
        return 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(kind: str, dataset: Path, *, cap_bytes: int | None) -> dict[str, Any]:
    """Run one child and sample its process tree's RSS every 0.1 s."""
    command = [sys.executable, __file__, "--child", kind, "--dataset", str(dataset)]
    command += ["--max-rounds", str(PARAMS.max_rounds), "--threads", str(PARAMS.threads)]
    if cap_bytes:
        command = ["prlimit", f"--as={cap_bytes}", "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    handle, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], tree_rss(handle))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        return {"kind": kind, "error": f"exit {proc.returncode}", "peak_rss": peak[0]}
    return {"kind": kind, "peak_rss": peak[0], **json.loads(out.strip().splitlines()[-1])}


def report(results: dict[int, dict[str, dict[str, Any]]]) -> None:
    """One row per size and kind, each figure beside the in-memory baseline's."""
    head = ("rows", "kind", "wall s", "x mem", "CPU s", "x mem", "peak GiB", "x mem", "AUC")
    widths = (11, 7, 8, 6, 8, 6, 9, 6, 7)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for rows, by_kind in sorted(results.items()):
        base = by_kind.get("memory", {})
        for kind, r in by_kind.items():
            if "error" in r:
                print(f"{rows:>11,} {kind:>7} {r['error']} (peak {r['peak_rss'] / 2**30:.2f} GiB)")
                continue
            wall_x = r["wall_s"] / base["wall_s"] if "wall_s" in base else float("nan")
            cpu_x = r["cpu_s"] / base["cpu_s"] if "cpu_s" in base else float("nan")
            rss_x = r["peak_rss"] / base["peak_rss"] if "peak_rss" in base else float("nan")
            print(
                f"{rows:>11,} {kind:>7} {r['wall_s']:>8.1f} {wall_x:>6.2f} {r['cpu_s']:>8.1f} "
                f"{cpu_x:>6.2f} {r['peak_rss'] / 2**30:>9.2f} {rss_x:>6.2f} {r['auc']:>7.4f}"
            )
    sizes = sorted(results)
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        for kind in KINDS:
            a, b = results[lo].get(kind, {}), results[hi].get(kind, {})
            if "wall_s" in a and "wall_s" in b:
                train_rows = (hi - lo) * 0.8 * 0.9  # hold-out 20%, early-stopping 10% of the rest
                slope = (b["peak_rss"] - a["peak_rss"]) / train_rows
                print(f"{kind}: {slope:.0f} bytes of peak RSS per additional training row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--only", choices=KINDS, nargs="+", default=list(KINDS))
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/churnscale-bench"))
    parser.add_argument("--cap-gib", type=float, help="address-space cap (prlimit --as)")
    parser.add_argument("--max-rounds", type=int, default=150, help="boosting rounds at most")
    parser.add_argument("--threads", type=int, default=0, help="LightGBM threads (0: all)")
    parser.add_argument("--breakdown", action="store_true", help="local memory by stage")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dataset)
        return
    if args.breakdown:
        breakdown(dataset_for(args.rows[-1], args.data_dir))
        return
    cap = int(args.cap_gib * 2**30) if args.cap_gib else None
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for rows in args.rows:
        dataset = dataset_for(rows, args.data_dir)
        results[rows] = {k: measure(k, dataset, cap_bytes=cap) for k in args.only}
        print(json.dumps({rows: results[rows]}), file=sys.stderr)
    report(results)


if __name__ == "__main__":
    main()
