"""LightGBM's own memory floor: its RSS while training on our data, with nothing of ours kept.

For each size, a fresh child encodes the training and early-stopping sides of the dataset that
``benchmarks/train.py`` generates (same split and parameters) into whole numpy matrices, builds
LightGBM Datasets from them, frees the matrices, the plan and the Preprocessor (Arrow pool and C
heap trimmed), then boosts. Its RSS is sampled every 0.05 s while boosting: the floor is that
peak less the child's RSS before it read any data. The slope between two sizes is LightGBM's own
bytes per training row, the figure local out-of-core training is compared with.

    .venv/bin/python benchmarks/lightgbm_floor.py --rows 1000000 10000000 --threads 1
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from train import PARAMS, dataset_for  # type: ignore[import-not-found]


def child(dataset: Path) -> None:
    """Train LightGBM alone on ``dataset``'s encoded sides; print RSS figures as JSON."""
    import lightgbm as lgb

    from churnscale.data.store import load_info
    from churnscale.features.names import lightgbm_names
    from churnscale.training import local
    from churnscale.training.plan import SplitSpec, plan_split
    from churnscale.training.sequence import SideSequence, release_unused_memory

    me = psutil.Process()
    base = me.memory_info().rss
    schema, _ = load_info(dataset)
    split = SplitSpec(seed=PARAMS.seed)
    plan = plan_split(dataset, schema, split, early_stop_fraction=local.EARLY_STOP_FRACTION)
    pre = local.fit_preprocessor(plan, schema)
    params = PARAMS.lightgbm_params()
    sides = {}
    for side in (local.TRAIN, local.VALID):
        sequence = SideSequence(plan, side, pre)
        sides[side] = (sequence[0 : len(sequence)], plan.labels[side])
    rows = {"train": len(sides[local.TRAIN][1]), "valid": len(sides[local.VALID][1])}
    names, categorical = lightgbm_names(pre.feature_names), pre.categorical_indices
    del plan, pre, sequence
    train = lgb.Dataset(
        *sides.pop(local.TRAIN),
        feature_name=names,
        categorical_feature=categorical,
        params=local.data_params(params),
    ).construct()
    valid = lgb.Dataset(
        *sides.pop(local.VALID), reference=train, params=local.data_params(params)
    ).construct()
    gc.collect()
    release_unused_memory()
    binned = me.memory_info().rss
    peak, done = [binned], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], me.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    booster = lgb.Booster(params=params, train_set=train)
    booster.add_valid(valid, "valid")
    for _ in range(PARAMS.max_rounds):
        booster.update()
    done.set()
    sampler.join()
    figures = {"binned": binned - base, "training": peak[0] - base, "base": base}
    print(json.dumps({"rows": rows, **figures}))


def measure(dataset: Path) -> dict[str, int]:
    command = [sys.executable, __file__, "--child", str(dataset)]
    command += ["--max-rounds", str(PARAMS.max_rounds), "--threads", str(PARAMS.threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/churnscale-bench"))
    parser.add_argument("--max-rounds", type=int, default=150, help="boosting rounds")
    parser.add_argument("--threads", type=int, default=0, help="LightGBM threads (0: all)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    results = {n: measure(dataset_for(n, args.data_dir)) for n in args.rows}
    for n, r in sorted(results.items()):
        print(
            f"{n:>11,} rows ({r['rows']['train']:,} training): LightGBM's binned sides "
            f"{r['binned'] / 2**30:.3f} GiB, while training {r['training'] / 2**30:.3f} GiB "
            f"(above the child's {r['base'] / 2**30:.3f} GiB before reading data)"
        )
    if len(results) >= 2:
        lo, hi = results[min(results)], results[max(results)]
        extra = hi["rows"]["train"] - lo["rows"]["train"]
        slope = (hi["training"] - lo["training"]) / extra
        print(f"LightGBM alone: {slope:.0f} bytes of RSS while training per extra training row")


if __name__ == "__main__":
    main()
