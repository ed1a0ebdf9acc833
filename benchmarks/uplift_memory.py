"""Peak RSS of uplift training (S, T, X) against binary training on the same stored rows.

Issue 20's scale goal: uplift training on 10M rows within 2× the binary model's peak RSS. The
generator's customers with a randomized offer (``generate --treatment``) are ingested once
(target ``retained``, ``true_uplift`` dropped); each model then trains in its own process (so
each peak is its own, read by ``wait4``): the binary model (``train_local``, the ``offer``
column one more feature, early stopping set to run every round) and the uplift model
(``train_uplift``, offer vs no_offer, one learner given so no cross-validation), both boosting
``--rounds`` rounds per booster on one thread, without the report and registry steps (the same
for both). Prints each peak RSS, wall time and the ratio to the binary model's.

    python benchmarks/uplift_memory.py --rows 500000 2000000 10000000 [--learners s t x]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _train(kind: str, dataset: Path, rounds: int) -> None:
    started = time.perf_counter()
    if kind == "binary":
        from churnscale.training.local import TrainParams, train_local

        params = TrainParams(max_rounds=rounds, early_stopping_rounds=rounds, threads=1)
        train_local(dataset, params=params)
    else:
        from churnscale.training.uplift import UpliftSpec, train_uplift
        from churnscale.training.uplift_fit import UpliftParams

        params = UpliftParams(rounds=rounds, threads=1)
        train_uplift(dataset, UpliftSpec("offer", "offer", "no_offer", learner=kind, params=params))
    print(json.dumps({"kind": kind, "seconds": round(time.perf_counter() - started, 1)}))


def _child(kind: str, dataset: Path, rounds: int) -> dict[str, object]:
    """Train ``kind`` in a child process; its own peak RSS (MiB) and wall time."""
    command = [sys.executable, __file__, "--child", kind, "--dataset", str(dataset)]
    with subprocess.Popen(
        [*command, "--rounds", str(rounds)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{kind} training failed ({child.returncode})")
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def _dataset(rows: int, scratch: Path) -> Path:
    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import GeneratorSpec, generate
    from churnscale.data.writers import write_batches

    raw, dataset = scratch / f"raw{rows}.parquet", scratch / f"ds{rows}"
    write_batches(generate(GeneratorSpec(rows, 1, treatment=True)), raw)
    hints = SchemaHints(target="retained", id="customer_id", drop=("true_uplift",))
    ingest(str(raw), dataset, hints=hints)
    raw.unlink()
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000])
    parser.add_argument("--learners", nargs="+", choices=["s", "t", "x"], default=["s", "t", "x"])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--child", choices=["binary", "s", "t", "x"])
    parser.add_argument("--dataset", type=Path)
    args = parser.parse_args()
    if args.child:
        _train(args.child, args.dataset, args.rounds)
        return
    for rows in args.rows:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as scratch:
            dataset = _dataset(rows, Path(scratch))
            binary = _child("binary", dataset, args.rounds)
            print(json.dumps({"rows": rows, **binary}), flush=True)
            for learner in args.learners:
                result = _child(learner, dataset, args.rounds)
                ratio = float(result["peak_rss_mib"]) / float(binary["peak_rss_mib"])  # type: ignore[arg-type]
                print(
                    json.dumps({"rows": rows, **result, "ratio_to_binary": round(ratio, 2)}),
                    flush=True,
                )
        print(json.dumps({"rows": rows, "load_1min": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
