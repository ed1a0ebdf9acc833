"""CSV → Parquet throughput and peak memory: churnscale ``ingest`` against polars, DuckDB and
pyarrow on the same generated CSV, plus generator rows/s and an ingest under a memory cap.

Every tool runs in its own subprocess; wall time, CPU time and peak RSS come from the
kernel's accounting of that process (``os.wait4``, as ``/usr/bin/time`` reports it). All
tools write zstd Parquet. churnscale also validates every value against the schema,
quarantines bad rows and fingerprints the content; the others only convert.

    .venv/bin/python benchmarks/ingest.py                # 2M rows, ~3 minutes on 2 cores
    .venv/bin/python benchmarks/ingest.py --rows 500000 --cap-rows 0   # quick, no capped run
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PYTHON = sys.executable
POLARS = """
import sys, polars as pl
pl.scan_csv(sys.argv[1]).sink_parquet(sys.argv[2], compression="zstd")
"""
DUCKDB = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' "
            "(FORMAT parquet, COMPRESSION zstd)")
"""
PYARROW = """
import sys, pyarrow.csv as pv, pyarrow.parquet as pq
reader = pv.open_csv(sys.argv[1])
with pq.ParquetWriter(sys.argv[2], reader.schema, compression="zstd") as writer:
    for batch in reader:
        writer.write_batch(batch)
"""


@dataclass
class Run:
    """What the kernel recorded about one subprocess."""

    name: str
    wall: float
    cpu: float
    peak_mb: float
    code: int
    error: str = ""


def run(name: str, command: list[str], *, env: dict[str, str] | None = None) -> Run:
    """Run ``command``, wait for it, and read its wall time, CPU time and peak RSS."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
    cpu = usage.ru_utime + usage.ru_stime
    return Run(name, wall, cpu, usage.ru_maxrss / 1024, proc.returncode, " ".join(tail))


def churnscale(*args: str) -> list[str]:
    """The churnscale CLI of this interpreter."""
    return [PYTHON, "-m", "churnscale", *args]


def load() -> str:
    """The 1-minute load average, since the machine may be shared."""
    return f"{os.getloadavg()[0]:.1f}"


#: Ways a faulty row is broken (as in tests/reliability/test_r16_csv_faults.py): each takes the
#: row's fields and returns its new bytes. Columns: 3 tenure, 4 contract, 5 plan, 7 region,
#: 8 monthly charges, 25 churned.
FAULTS = (
    lambda f: b",".join([*f, b"extra"]),  # an extra field
    lambda f: b",".join(f[:-1]),  # a missing field
    lambda f: b",".join([*f[:8], b"abc", *f[9:]]),  # text in a number
    lambda f: b",".join([*f[:7], b'"region_\xff\xfe"', *f[8:]]),  # invalid UTF-8
    lambda f: b",".join([*f[:5], f[5].rstrip(b'"'), *f[6:]]),  # unterminated quote
    lambda f: b",".join([*f[:3], f[3] + b'"', *f[4:]]),  # stray quote
    lambda f: b",".join([*f[:4], f[4][:3] + b"\n" + f[4][3:], *f[5:]]),  # quoted line break
    lambda f: b",".join([*f[:25], b"2"]),  # unknown label
)


def inject_faults(src: Path, out: Path, *, every: int = 1000, seed: int = 7) -> int:
    """Copy ``src`` to ``out`` with one row in ``every`` broken (kinds in turn); return how many."""
    rng = random.Random(seed)
    lines = src.read_bytes().split(b"\n")
    rows = range(1, len(lines) - 1)
    chosen = sorted(rng.sample(rows, len(rows) // every))
    for kind, row in enumerate(chosen):
        lines[row] = FAULTS[kind % len(FAULTS)](lines[row].split(b","))
    out.write_bytes(b"\n".join(lines))
    return len(chosen)


def baseline(csv: Path, out: Path, src: Path | None) -> list[Run]:
    """churnscale from another source tree (``--baseline-src``: e.g. main), if asked."""
    if src is None:
        return []
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = churnscale("ingest", str(csv), "--out", str(out))
    return [run(f"churnscale ({src.parent.name})", command, env=env)]


def convert_all(csv: Path, work: Path, src: Path | None) -> list[Run]:
    """CSV → Parquet with every tool, one after another."""
    runs = [
        run("churnscale ingest", churnscale("ingest", str(csv), "--out", str(work / "cs"))),
        *baseline(csv, work / "base", src),
        run("polars sink_parquet", [PYTHON, "-c", POLARS, str(csv), str(work / "pl.parquet")]),
        run("duckdb COPY", [PYTHON, "-c", DUCKDB, str(csv), str(work / "dd.parquet")]),
        run("pyarrow open_csv", [PYTHON, "-c", PYARROW, str(csv), str(work / "pa.parquet")]),
    ]
    shutil.rmtree(work / "base", ignore_errors=True)
    for r in runs:
        if r.code:
            print(f"warning: {r.name} failed ({r.code}): {r.error}", file=sys.stderr)
    return runs


def print_conversions(runs: list[Run], size_mb: float, rows: int) -> None:
    base = runs[0]
    print(f"\nCSV → Parquet, {rows:,} rows, {size_mb:,.0f} MiB of CSV (ratios vs churnscale)")
    print(
        f"| {'tool':<22} | {'wall s':>7} | {'MiB/s':>6} | {'× MiB/s':>8} | {'CPU s':>6} "
        f"| {'peak RSS MiB':>12} | {'× RSS':>5} |"
    )
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 8}|{'-' * 10}|{'-' * 8}|{'-' * 14}|{'-' * 7}|")
    for r in runs:
        speed = size_mb / r.wall
        ratio = speed / (size_mb / base.wall)
        print(
            f"| {r.name:<22} | {r.wall:>7.2f} | {speed:>6.1f} | {ratio:>8.2f} | {r.cpu:>6.2f} "
            f"| {r.peak_mb:>12.0f} | {r.peak_mb / base.peak_mb:>5.2f} |"
        )


def faulty(csv: Path, work: Path, rows: int, src: Path | None) -> None:
    """churnscale on the same CSV with 0.1% faulty rows, against polars on the clean file."""
    bad = work / "faulty.csv"
    # in a child, so that this process stays small (a child's peak RSS counts its parent's)
    made = subprocess.run(
        [PYTHON, __file__, "--inject", str(csv), str(bad)], capture_output=True, text=True
    )
    if made.returncode:
        print(f"faulty run skipped: {made.stderr.strip()}")
        return
    broken = int(made.stdout)
    runs = [
        run("churnscale, 0.1% bad", churnscale("ingest", str(bad), "--out", str(work / "bad"))),
        *baseline(bad, work / "base", src),
        run("polars (clean file)", [PYTHON, "-c", POLARS, str(csv), str(work / "pl2.parquet")]),
    ]
    for r in runs:
        if r.code:
            print(f"warning: {r.name} failed ({r.code}): {r.error}", file=sys.stderr)
    print(f"\nThe same CSV with {broken:,} faulty rows of 8 kinds (1 in 1,000; quarantined)")
    print_conversions(runs, bad.stat().st_size / 2**20, rows)
    bad.unlink()
    shutil.rmtree(work / "bad", ignore_errors=True)
    shutil.rmtree(work / "base", ignore_errors=True)


def generator(rows: int, work: Path) -> None:
    """Generator rows/s to Parquet with 2 threads, against 1 thread and the 1M rows/s goal."""
    runs = [
        run(
            f"generate --threads {t}",
            churnscale(
                "generate",
                "--rows",
                str(rows),
                "--threads",
                str(t),
                "--out",
                str(work / f"g{t}.parquet"),
            ),
        )
        for t in (2, 1)
    ]
    print(f"\nGenerator → Parquet, {rows:,} rows (ratios vs 1 thread and vs the 1M rows/s goal)")
    print(
        f"| {'command':<22} | {'wall s':>7} | {'rows/s':>10} | {'× 1 thread':>10} | {'× goal':>6} |"
    )
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
    single = rows / runs[1].wall
    for r in runs:
        speed = rows / r.wall
        print(
            f"| {r.name:<22} | {r.wall:>7.2f} | {speed:>10,.0f} | {speed / single:>10.2f} "
            f"| {speed / 1e6:>6.2f} |"
        )


def capped(rows: int, cap_mb: int, batch_rows: int, work: Path) -> None:
    """churnscale ingest of a CSV larger than an address-space cap (``prlimit --as``).

    The cap limits virtual memory, which for Python + Arrow is well above the resident set
    (thread stacks, allocator reservations); glibc arenas are limited and Arrow uses the
    system allocator so that reservations stay close to what is used.
    """
    csv = work / "capped.csv"
    made = run(
        "generate",
        churnscale("generate", "--rows", str(rows), "--format", "csv", "--out", str(csv)),
    )
    if made.code:
        print(f"capped run skipped: could not generate the CSV: {made.error}")
        return
    size_mb = csv.stat().st_size / 2**20
    limit = ["prlimit", f"--as={cap_mb * 2**20}"] if shutil.which("prlimit") else []
    env = {
        **os.environ,
        "MALLOC_ARENA_MAX": "2",
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "CHURNSCALE_BATCH_ROWS": str(batch_rows),
    }
    r = run(
        "ingest (capped)",
        limit + churnscale("ingest", str(csv), "--out", str(work / "cap")),
        env=env,
    )
    csv.unlink()
    print(
        f"\nIngest under a memory cap: {rows:,} rows, {size_mb:,.0f} MiB CSV, batches of "
        f"{batch_rows:,} rows, address space capped at {cap_mb} MiB "
        f"({cap_mb / size_mb:.2f} × the input)"
        + ("" if limit else " — prlimit missing, NOT capped")
    )
    outcome = "ok" if r.code == 0 else f"FAILED ({r.code}): {r.error}"
    print(
        f"  {outcome}; wall {r.wall:.1f} s, {size_mb / r.wall:.1f} MiB/s, "
        f"peak RSS {r.peak_mb:.0f} MiB ({r.peak_mb / size_mb:.2f} × the input)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the CSV")
    parser.add_argument("--gen-rows", type=int, default=5_000_000, help="generator rows")
    parser.add_argument("--cap-rows", type=int, default=8_000_000, help="0 skips the capped run")
    parser.add_argument("--cap-mb", type=int, default=1024, help="address-space cap in MiB")
    parser.add_argument("--cap-batch", type=int, default=65_536, help="batch rows, capped run")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    parser.add_argument(
        "--baseline-src", type=Path, help="also run churnscale from this src/ (e.g. main's)"
    )
    parser.add_argument("--inject", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inject:
        print(inject_faults(*args.inject))
        return
    work = Path(tempfile.mkdtemp(prefix="churnscale-bench-", dir=args.dir))
    try:
        print(
            f"# churnscale ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} cores, load {load()}"
        )
        csv = work / "data.csv"
        made = run(
            "generate csv",
            churnscale("generate", "--rows", str(args.rows), "--format", "csv", "--out", str(csv)),
        )
        if made.code:
            sys.exit(f"could not generate the CSV: {made.error}")
        runs = convert_all(csv, work, args.baseline_src)
        print_conversions(runs, csv.stat().st_size / 2**20, args.rows)
        shutil.rmtree(work / "cs", ignore_errors=True)
        faulty(csv, work, args.rows, args.baseline_src)
        csv.unlink()
        generator(args.gen_rows, work)
        if args.cap_rows:
            capped(args.cap_rows, args.cap_mb, args.cap_batch, work)
        print(f"\nload at the end: {load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
