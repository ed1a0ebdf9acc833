"""CSV → stored dataset throughput: the quarantine-grade reader against the first version.

    .venv/bin/python benchmarks/csv_ingest.py --rows 1000000

Generates a synthetic CSV (once), then times, for each reader: reading alone (all chunks) and
``ingest`` into a Parquet dataset. MB/s are of the CSV file's bytes. The first-version reader
(one record per line, pyarrow streaming, no line numbers for rejects) is kept here as the
baseline and swapped in for its runs.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

import churnscale.data.csv_reader as csv_reader
from churnscale.data.chunk import Chunk
from churnscale.data.quarantine import Reject
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import GeneratorSpec, generate
from churnscale.data.writers import write_batches

Reader = Callable[..., Iterator[Chunk]]

#: CPU seconds (all threads) of every timed run, by (stage, reader): steadier than wall time
#: on a shared machine.
CPU_SECONDS: dict[tuple[str, Reader], list[float]] = {}


def first_version_chunks(
    fs: Any, name: str, *, delimiter: str, batch_rows: int, unquote_header: bool = False
) -> Iterator[Chunk]:
    """The reader this work replaced (commit 57a8688), for the baseline.

    It split the header on the delimiter without unquoting, so with a quoted header (as
    pyarrow writes it) its string ``column_types`` matched nothing and pyarrow inferred typed
    columns, sparing ``conform`` its text checks. ``unquote_header`` reads the header
    properly, so every column is text as the reader's contract says.
    """
    with fs.open(name, "rb") as handle:
        line = handle.readline().decode("utf-8-sig").rstrip("\r\n")
        header = next(csv.reader([line])) if unquote_header else line.split(delimiter)
        handle.seek(0)
        rejects: list[Reject] = []

        def on_invalid(row: Any) -> str:
            rejects.append(Reject(name, -1, "wrong number of fields", value=str(row.text)[:200]))
            return "skip"

        reader = pv.open_csv(
            handle,
            read_options=pv.ReadOptions(block_size=32 << 20, encoding="utf8"),
            parse_options=pv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False
            ),
        )
        line = 2
        for batch in reader:
            for start in range(0, batch.num_rows, batch_rows):
                part = batch.slice(start, batch_rows)
                lines = np.arange(line, line + part.num_rows, dtype=np.int64)
                line += part.num_rows
                yield Chunk(part, name, lines, rejects[:])
                rejects.clear()


def with_faults(path: Path, out: Path, *, every: int = 1_000) -> Path:
    """A copy of ``path`` where one row in ``every`` has an extra field or an open quote."""
    lines = path.read_bytes().split(b"\n")
    for n, i in enumerate(range(every // 2, len(lines) - 1, every)):
        lines[i] = lines[i] + b",extra" if n % 2 else lines[i].replace(b'"', b"", 1)
    out.write_bytes(b"\n".join(lines))
    return out


def time_read(reader: Reader, path: Path) -> float:
    """Seconds to read every chunk of ``path``."""
    fs = fsspec.filesystem("file")
    start, cpu = time.perf_counter(), time.process_time()
    rows = sum(c.batch.num_rows for c in reader(fs, str(path), delimiter=",", batch_rows=262_144))
    elapsed = time.perf_counter() - start
    CPU_SECONDS.setdefault(("read", reader), []).append(time.process_time() - cpu)
    assert rows > 0
    return elapsed


def time_ingest(reader: Reader, path: Path, work: Path) -> float:
    """Seconds for ``ingest`` of ``path`` with ``reader`` swapped in."""
    original = csv_reader.read_csv_chunks
    csv_reader.read_csv_chunks = reader
    out = work / "ds"
    try:
        start, cpu = time.perf_counter(), time.process_time()
        ingest(str(path), out, hints=SchemaHints(target="churned"))
        CPU_SECONDS.setdefault(("ingest", reader), []).append(time.process_time() - cpu)
        return time.perf_counter() - start
    finally:
        csv_reader.read_csv_chunks = original
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "customers.csv"
        write_batches(generate(GeneratorSpec(args.rows, seed=0)), path, fmt="csv")
        megabytes = path.stat().st_size / 1e6
        readers: dict[str, Reader] = {
            "first version": first_version_chunks,
            "first, all text": partial(first_version_chunks, unquote_header=True),
            "quarantine-grade": csv_reader.read_csv_chunks,
        }
        reads: dict[str, list[float]] = {label: [] for label in readers}
        ingests: dict[str, list[float]] = {label: [] for label in readers}
        for _ in range(args.repeat):  # interleaved, so load on a shared machine hits both
            for label, reader in readers.items():
                reads[label].append(time_read(reader, path))
                ingests[label].append(time_ingest(reader, path, work))
        results = {
            label: (megabytes / min(reads[label]), megabytes / min(ingests[label]))
            for label in readers
        }
        faulty = with_faults(path, work / "faulty.csv")
        clean_read = min(reads["quarantine-grade"])
        faulty_read = min(time_read(csv_reader.read_csv_chunks, faulty) for _ in range(args.repeat))
        base_read, base_ingest = results["first version"]
        base = readers["first version"]
        base_cpu = [min(CPU_SECONDS[(stage, base)]) for stage in ("read", "ingest")]
        print(f"{args.rows:,} rows, {megabytes:.0f} MB of CSV; best of {args.repeat}")
        print(
            f"{'reader':<18} {'read MB/s':>10} {'ratio':>6} {'CPU s':>6} {'ratio':>6} "
            f"{'ingest MB/s':>12} {'ratio':>6} {'CPU s':>6} {'ratio':>6}"
        )
        for label, (read_rate, ingest_rate) in results.items():
            cpu = [min(CPU_SECONDS[(stage, readers[label])]) for stage in ("read", "ingest")]
            print(
                f"{label:<18} {read_rate:>10.1f} {read_rate / base_read:>6.2f} "
                f"{cpu[0]:>6.2f} {cpu[0] / base_cpu[0]:>6.2f} "
                f"{ingest_rate:>12.1f} {ingest_rate / base_ingest:>6.2f} "
                f"{cpu[1]:>6.2f} {cpu[1] / base_cpu[1]:>6.2f}"
            )
        print(
            f"quarantine-grade reader with 0.1% faulty rows (every block on the slow path): "
            f"{megabytes / faulty_read:.1f} MB/s, {clean_read / faulty_read:.2f} of clean"
        )


if __name__ == "__main__":
    main()
