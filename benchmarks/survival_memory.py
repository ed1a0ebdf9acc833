"""Peak RSS of survival training against binary training on the same stored rows.

The generator's customers are ingested once (target ``churned``); each side then trains in its
own process (so each peak is its own): the binary model (``train_local``) and the survival
model (``fit_survival``: duration ``tenure_months``, event ``churned``, one fixed candidate, so
both boost the same number of rounds). Both without the report and registry steps, which are
the same for both. Prints each peak RSS (``VmHWM``), wall time and the ratio.

    python benchmarks/survival_memory.py --rows 1000000 [--rounds 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def _peak_mib() -> float:
    """This process's peak RSS since its exec (``VmHWM``): ``ru_maxrss`` carries the forking
    parent's RSS over the exec on Linux, and the parent generated and ingested the rows."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _train(kind: str, dataset: Path, rounds: int) -> None:
    from churnscale.data.schema import DURATION_KEY
    from churnscale.data.store import load_info
    from churnscale.training.local import TrainParams, train_local
    from churnscale.training.survival import SurvivalJob, fit_survival

    params = TrainParams(max_rounds=rounds, early_stopping_rounds=rounds, threads=2)
    started = time.perf_counter()
    if kind == "binary":
        train_local(dataset, params=params)
    else:
        stored, info = load_info(dataset)
        schema = replace(stored, metadata={**stored.metadata, DURATION_KEY: "tenure_months"})
        job = SurvivalJob(dataset, "tenure_months", (3.0, 12.0), "normal", 1.0, params=params)
        fit_survival(job, schema, info.fingerprint, None)
    peak_mib = _peak_mib()
    print(
        json.dumps(
            {"kind": kind, "peak_rss_mib": peak_mib, "seconds": time.perf_counter() - started}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--child", choices=["binary", "survival"])
    parser.add_argument("--dataset", type=Path)
    args = parser.parse_args()
    if args.child:
        _train(args.child, args.dataset, args.rounds)
        return
    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import GeneratorSpec, generate
    from churnscale.data.writers import write_batches

    with tempfile.TemporaryDirectory() as tmp:
        raw, dataset = Path(tmp) / "raw.parquet", Path(tmp) / "ds"
        write_batches(generate(GeneratorSpec(args.rows, 1)), raw)
        ingest(str(raw), dataset, hints=SchemaHints(target="churned", id="customer_id"))
        results = []
        for kind in ("binary", "survival"):
            command = [sys.executable, __file__, "--child", kind, "--dataset", str(dataset)]
            done = subprocess.run(
                [*command, "--rounds", str(args.rounds)], check=True, capture_output=True, text=True
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # each side as it ends
    ratio = results[1]["peak_rss_mib"] / results[0]["peak_rss_mib"]
    load = os.getloadavg()[0]
    summary = {"rows": args.rows, "rounds": args.rounds, "load_1min": load, "results": results}
    print(json.dumps({**summary, "survival_over_binary_peak_rss": ratio}, indent=1))


if __name__ == "__main__":
    main()
