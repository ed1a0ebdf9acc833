"""Peak RSS of uplift training (S, T, X) against binary training on the same stored rows.

Issue 20's scale goal: uplift training on 10M rows within 2× the binary model's peak RSS. The
generator's customers with a randomized offer (``generate --treatment``) are ingested once, in
a child process (target ``retained``, ``true_uplift`` dropped); each model then trains in its
own process: the binary model (``train_local``, the ``offer`` column one more feature, early
stopping set to run every round) and the uplift model (``train_uplift``, offer vs no_offer, one
learner given so no cross-validation), both boosting ``--rounds`` rounds per booster on one
thread, without the report and registry steps (the same for both). Each child reports its own
peak RSS (``VmHWM``: ``ru_maxrss`` would carry the forking parent's RSS across the exec, on
Linux) and wall time; printed with the ratio to the binary model's.

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
    seconds = round(time.perf_counter() - started, 1)
    print(json.dumps({"kind": kind, "seconds": seconds, "peak_rss_mib": _peak_mib()}))


def _peak_mib() -> float:
    """This process's peak RSS since its exec (``VmHWM``; ``ru_maxrss`` would carry the
    forking parent's RSS over the exec, on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child(kind: str, dataset: Path, rounds: int) -> dict[str, object]:
    """Train ``kind`` in a child process; its own peak RSS (MiB) and wall time."""
    command = [sys.executable, __file__, "--child", kind, "--dataset", str(dataset)]
    done = subprocess.run(
        [*command, "--rounds", str(rounds)], check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _dataset(rows: int, dataset: Path) -> None:
    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import GeneratorSpec, generate
    from churnscale.data.writers import write_batches

    raw = dataset.with_name("raw.parquet")
    write_batches(generate(GeneratorSpec(rows, 1, treatment=True)), raw)
    hints = SchemaHints(target="retained", id="customer_id", drop=("true_uplift",))
    ingest(str(raw), dataset, hints=hints)
    raw.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000])
    parser.add_argument("--learners", nargs="+", choices=["s", "t", "x"], default=["s", "t", "x"])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--child", choices=["binary", "s", "t", "x"])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--generate", type=int, help="(internal) write the dataset of N rows")
    args = parser.parse_args()
    if args.child:
        _train(args.child, args.dataset, args.rounds)
        return
    if args.generate:
        _dataset(args.generate, args.dataset)
        return
    for rows in args.rows:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as scratch:
            dataset = Path(scratch) / "ds"
            command = [sys.executable, __file__, "--generate", str(rows), "--dataset", str(dataset)]
            subprocess.run(command, check=True)  # in a child: this process stays small
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
