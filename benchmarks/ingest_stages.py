"""Where ingest's CPU goes, stage by stage, on one generated CSV; and the fingerprint against
the pandas row hash it replaced, measured in the same run.

    .venv/bin/python benchmarks/ingest_stages.py --rows 1000000
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.conform import conform
from churnscale.data.fingerprint import Fingerprint
from churnscale.data.readers import peek_sample, read_chunks
from churnscale.data.schema import SchemaHints, infer_schema
from churnscale.data.synthetic import GeneratorSpec, generate
from churnscale.data.writers import write_batches

T = TypeVar("T")


def timed(label: str, work: Callable[[], T], table: list[tuple[str, float, float]]) -> T:
    """Run ``work``; record its CPU seconds (all threads) and wall seconds under ``label``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    table.append((label, time.process_time() - cpu, time.perf_counter() - wall))
    return result


def pandas_fingerprint(batches: list[pa.RecordBatch]) -> int:
    """The row hash the store used before: pandas' hash of every row, summed."""
    import pandas as pd

    total = 0
    for batch in batches:
        hashes = pd.util.hash_pandas_object(batch.to_pandas(), index=False)
        total += int(hashes.to_numpy(dtype=np.uint64).sum(dtype=np.uint64))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=262_144)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churnscale-stages-") as tmp:
        csv = Path(tmp) / "data.csv"
        write_batches(generate(GeneratorSpec(args.rows, 0)), csv, fmt="csv")
        size_mb = csv.stat().st_size / 2**20
        rows: list[tuple[str, float, float]] = []
        chunks = timed(
            "read CSV (text columns)",
            lambda: list(read_chunks(str(csv), batch_rows=args.batch_rows)),
            rows,
        )
        sample, _ = peek_sample(iter(chunks), str(csv))
        schema = timed("infer schema", lambda: infer_schema(sample, SchemaHints()), rows)
        typed = timed(
            "conform",
            lambda: [conform(c.batch, schema, source="x", lines=c.lines)[0] for c in chunks],
            rows,
        )
        fingerprint = Fingerprint()
        timed("fingerprint (numpy)", lambda: [fingerprint.update(b) for b in typed], rows)
        import pandas  # noqa: F401  (imported outside the timing: a fixed cost, not per row)

        timed("fingerprint (pandas, before)", lambda: pandas_fingerprint(typed), rows)

        def write() -> None:
            sink = io.BytesIO()
            with pq.ParquetWriter(
                sink, schema.arrow_schema(), compression="zstd", write_page_checksum=True
            ) as writer:
                for batch in typed:
                    writer.write_batch(batch)

        timed("Parquet write", write, rows)
    load = os.getloadavg()[0]
    print(
        f"{args.rows:,} rows, {size_mb:,.0f} MiB CSV, "
        f"batches of {args.batch_rows:,}, load {load:.1f}"
    )
    stages = [r for r in rows if "pandas" not in r[0]]
    total = sum(cpu for _, cpu, _ in stages)
    print(f"| {'stage':<30} | {'CPU s':>6} | {'share':>6} | {'wall s':>6} |")
    print(f"|{'-' * 32}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
    for label, cpu, wall in rows:
        share = f"{cpu / total:6.1%}" if "pandas" not in label else "   —  "
        print(f"| {label:<30} | {cpu:>6.2f} | {share} | {wall:>6.2f} |")
    new = next(cpu for label, cpu, _ in rows if label.startswith("fingerprint (numpy"))
    old = next(cpu for label, cpu, _ in rows if "pandas" in label)
    print(f"fingerprint CPU, numpy vs pandas: {new / old:.2f} ×")


if __name__ == "__main__":
    main()
