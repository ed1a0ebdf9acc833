"""Feature-builder throughput against a pandas groupby baseline computing the same features.

A DuckDB query computing them too is the third contender (the engine-choice measurement).
Each runs on the same generated event log, each in its own process so that its peak RSS is its
own; the baseline's output is checked against the builder's (same rows, same values).

Usage: .venv/bin/python benchmarks/features.py [--customers 20000] [--as-of 2026-06-30]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from churnscale.data.events import generate_events
from churnscale.data.synthetic import GeneratorSpec
from churnscale.data.writers import write_batches
from churnscale.features.builder import build_features
from churnscale.features.sources import BuildSources
from churnscale.features.spec import FeatureSpec

SPEC = FeatureSpec()
DAY = pd.Timedelta(days=1)


def run_builder(events: str, out: Path, as_of: date) -> pd.DataFrame:
    """The churnscale builder (buckets on disk, numpy kernel)."""
    from churnscale.data.store import iter_dataset

    build_features(BuildSources(events), out, as_of=[as_of], spec=SPEC)
    return pa.Table.from_batches(list(iter_dataset(out))).to_pandas()


def _window(frame: pd.DataFrame, cut: pd.Timestamp, w: int, out: pd.DataFrame) -> None:
    last = frame[frame.timestamp >= cut - w * DAY]
    prev = frame[(frame.timestamp >= cut - 2 * w * DAY) & (frame.timestamp < cut - w * DAY)]
    count, before = last.groupby("customer_id").size(), prev.groupby("customer_id").size()
    out[f"count_{w}d"] = count.reindex(out.index, fill_value=0)
    out[f"count_trend_{w}d"] = np.log1p(out[f"count_{w}d"]) - np.log1p(
        before.reindex(out.index, fill_value=0)
    )
    days = last.groupby("customer_id").day.nunique()
    out[f"active_days_{w}d"] = days.reindex(out.index, fill_value=0)
    typed = last.groupby(["customer_id", "event_type"], observed=True).size().unstack()
    for t in SPEC.activity_types:
        column = typed[t] if t in typed else pd.Series(dtype=float)
        out[f"count_{t}_{w}d"] = column.reindex(out.index).fillna(0)
    for a in SPEC.amount_types:
        now = last[last.event_type == a].groupby("customer_id").amount.sum()
        then = prev[prev.event_type == a].groupby("customer_id").amount.sum()
        out[f"amount_{a}_{w}d"] = now.reindex(out.index, fill_value=0.0)
        then = then.reindex(out.index, fill_value=0.0)
        out[f"amount_trend_{a}_{w}d"] = np.log1p(out[f"amount_{a}_{w}d"].clip(lower=0)) - np.log1p(
            then.clip(lower=0)
        )


def run_pandas(events: str, as_of: date) -> pd.DataFrame:
    """The baseline: the same features with pandas groupby on the whole log in memory."""
    frame = pd.read_parquet(events)
    frame["event_type"] = frame["event_type"].astype(str)
    frame["amount"] = frame["amount"].fillna(0.0)
    cut = pd.Timestamp(as_of)
    frame = frame[frame.timestamp < cut].sort_values(["customer_id", "timestamp"], kind="stable")
    cancelled = frame.loc[frame.event_type == "cancel", "customer_id"].unique()
    frame = frame[~frame.customer_id.isin(cancelled)]
    frame["day"] = frame.timestamp.dt.floor("D")
    by = frame.groupby("customer_id")
    out = pd.DataFrame({"tenure_days": (cut - by.timestamp.min()) / DAY})
    out["recency_days"] = (cut - by.timestamp.max()) / DAY
    last = frame.groupby(["customer_id", "event_type"]).timestamp.max().unstack()
    for t in SPEC.activity_types:
        out[f"recency_days_{t}"] = (cut - last[t].reindex(out.index)) / DAY
    gaps = by.timestamp.diff() / DAY
    out["gap_mean_days"] = gaps.groupby(frame.customer_id).mean()
    out["gap_std_days"] = gaps.groupby(frame.customer_id).std(ddof=0)
    out["gap_max_days"] = gaps.groupby(frame.customer_id).max()
    out["count_total"] = by.size()
    out["active_days_total"] = by.day.nunique()
    for a in SPEC.amount_types:
        mine = frame[frame.event_type == a].groupby("customer_id").amount
        out[f"amount_total_{a}"] = mine.sum().reindex(out.index, fill_value=0.0)
        out[f"amount_mean_{a}"] = mine.mean().reindex(out.index)
    for w in SPEC.windows:
        _window(frame, cut, w, out)
    return out


def _duckdb_columns(cut: int) -> list[str]:
    day = "86400000000.0"
    cols = [
        f"({cut} - MIN(us)) / {day} AS tenure_days",
        f"({cut} - MAX(us)) / {day} AS recency_days",
    ]
    cols += [
        f"({cut} - MAX(us) FILTER (WHERE t = '{t}')) / {day} AS recency_days_{t}"
        for t in SPEC.activity_types
    ]
    cols += ["AVG(gap) AS gap_mean_days", "STDDEV_POP(gap) AS gap_std_days"]
    cols += ["MAX(gap) AS gap_max_days", "COUNT(*) AS count_total"]
    cols += ["COUNT(DISTINCT us // 86400000000) AS active_days_total"]
    for a in SPEC.amount_types:
        cols += [f"COALESCE(SUM(amount) FILTER (WHERE t = '{a}'), 0) AS amount_total_{a}"]
        cols += [f"AVG(amount) FILTER (WHERE t = '{a}') AS amount_mean_{a}"]
    for w in SPEC.windows:
        last, prev = f"us >= {cut - w * 86_400_000_000}", f"us >= {cut - 2 * w * 86_400_000_000}"
        cols += [f"COUNT(*) FILTER (WHERE {last}) AS count_{w}d"]
        cols += [
            f"LN(1 + COUNT(*) FILTER (WHERE {last})) - "
            f"LN(1 + COUNT(*) FILTER (WHERE {prev} AND NOT {last})) AS count_trend_{w}d"
        ]
        cols += [f"COUNT(DISTINCT us // 86400000000) FILTER (WHERE {last}) AS active_days_{w}d"]
        cols += [
            f"COUNT(*) FILTER (WHERE {last} AND t = '{t}') AS count_{t}_{w}d"
            for t in SPEC.activity_types
        ]
        for a in SPEC.amount_types:
            now = f"COALESCE(SUM(amount) FILTER (WHERE {last} AND t = '{a}'), 0)"
            then = f"COALESCE(SUM(amount) FILTER (WHERE {prev} AND NOT {last} AND t = '{a}'), 0)"
            cols += [f"{now} AS amount_{a}_{w}d"]
            cols += [
                f"LN(1 + GREATEST({now}, 0)) - LN(1 + GREATEST({then}, 0)) AS amount_trend_{a}_{w}d"
            ]
    return cols


def run_duckdb(events: str, as_of: date) -> pd.DataFrame:
    """A second contender: the same features as one DuckDB query (FILTERed aggregates)."""
    import duckdb

    cut = int(pd.Timestamp(as_of).value // 1000)
    sql = f"""
        WITH ev AS (
            SELECT customer_id, epoch_us(timestamp) AS us, CAST(event_type AS VARCHAR) AS t,
                   COALESCE(amount, 0) AS amount
            FROM read_parquet('{events}') WHERE epoch_us(timestamp) < {cut}
        ), kept AS (
            SELECT * FROM ev
            WHERE customer_id NOT IN (SELECT customer_id FROM ev WHERE t = 'cancel')
        ), g AS (
            SELECT *, (us - LAG(us) OVER (PARTITION BY customer_id ORDER BY us)) / 86400000000.0
                AS gap
            FROM kept
        )
        SELECT customer_id, {", ".join(_duckdb_columns(cut))} FROM g GROUP BY customer_id
    """
    with duckdb.connect(config={"threads": 2}) as con:
        return con.execute(sql).df().set_index("customer_id")


def child(mode: str, events: str, out: str, as_of: date) -> None:
    """Run one contender and print its seconds, rows and peak RSS as JSON."""
    start = time.perf_counter()
    if mode == "builder":
        result = run_builder(events, Path(out), as_of).set_index("customer_id")
    elif mode == "duckdb":
        result = run_duckdb(events, as_of)
    else:
        result = run_pandas(events, as_of)
    seconds = time.perf_counter() - start
    result[SPEC.feature_names()].sort_index().to_parquet(out + ".check.parquet")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": len(result), "rss_mib": rss}))


def measure(mode: str, events: str, out: str, as_of: date) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--events", events, "--out", out]
    done = subprocess.run([*command, "--as-of", as_of.isoformat()], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--child", choices=("builder", "pandas", "duckdb"))
    parser.add_argument("--events")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.out, args.as_of)
        return
    with tempfile.TemporaryDirectory() as tmp:
        events = str(Path(tmp) / "events.parquet")
        count = write_batches(generate_events(GeneratorSpec(args.customers, 1)), Path(events))
        ours = measure("builder", events, str(Path(tmp) / "ds"), args.as_of)
        base = measure("pandas", events, str(Path(tmp) / "pandas"), args.as_of)
        duck = measure("duckdb", events, str(Path(tmp) / "duckdb"), args.as_of)
        a = pd.read_parquet(str(Path(tmp) / "ds") + ".check.parquet")
        for other in ("pandas", "duckdb"):
            b = pd.read_parquet(str(Path(tmp) / other) + ".check.parquet")
            pd.testing.assert_frame_equal(a, b.astype(a.dtypes), check_exact=False, rtol=1e-9)
    print(f"{count:,} events, {args.customers:,} customers, as-of {args.as_of}; outputs match")
    print(f"{'engine':<30}{'seconds':>9}{'events/s':>13}{'peak RSS MiB':>14}{'speed ratio':>13}")
    contenders = (
        ("churnscale builder", ours),
        ("pandas groupby (baseline)", base),
        ("duckdb, one query", duck),
    )
    for name, m in contenders:
        ratio = base["seconds"] / m["seconds"]
        rate = count / m["seconds"]
        print(f"{name:<30}{m['seconds']:>9.2f}{rate:>13,.0f}{m['rss_mib']:>14,.0f}{ratio:>12.2f}x")


if __name__ == "__main__":
    main()
