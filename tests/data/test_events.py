from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.events import (
    EVENT_TYPES,
    LOG_END,
    SUB_ROWS,
    generate_events,
    generate_events_table,
)
from churnscale.data.synthetic import SNAPSHOT, GeneratorSpec, generate_table


def test_same_seed_same_log_other_seed_other_log() -> None:
    a, b, c = (
        generate_events_table(300, 4),
        generate_events_table(300, 4),
        generate_events_table(300, 5),
    )
    assert a.equals(b)
    assert not a.equals(c)
    assert set(pc.unique(a["customer_id"]).to_pylist()) == {f"C{i}" for i in range(300)}


@settings(max_examples=4, deadline=None)
@given(rows=st.integers(1, SUB_ROWS + 3), threads=st.integers(1, 3))
def test_log_independent_of_threads_and_total_size(rows: int, threads: int) -> None:
    whole = pa.Table.from_batches(list(generate_events(GeneratorSpec(rows, 9), threads=threads)))
    assert whole.equals(generate_events_table(rows, 9))
    prefix = generate_events_table(max(rows - 3, 1), 9)
    ids = set(pc.unique(prefix["customer_id"]).to_pylist())
    assert whole.filter(pc.is_in(whole["customer_id"], pa.array(sorted(ids)))).equals(prefix)


def _frames(rows: int, seed: int) -> tuple[pa.Table, pa.Table]:
    return generate_table(rows, seed), generate_events_table(rows, seed)


def test_cancellations_follow_churn_and_end_activity() -> None:
    customers, events = _frames(1_500, 2)
    frame = events.to_pandas()
    frame["event_type"] = frame["event_type"].astype(str)
    cancels = frame[frame.event_type == "cancel"].set_index("customer_id").timestamp
    churned = customers.to_pandas().set_index("customer_id").churned
    assert set(cancels.index) == set(churned[churned == 1].index)
    snapshot = SNAPSHOT.astype("datetime64[us]")
    assert (cancels > snapshot).all() and (cancels <= snapshot + np.timedelta64(90, "D")).all()
    last = frame.groupby("customer_id").timestamp.max()
    assert (last[cancels.index] == cancels).all()
    assert (frame.timestamp < LOG_END.astype("datetime64[us]")).all()
    assert set(frame.event_type) == set(EVENT_TYPES)


def test_activity_reflects_the_snapshot_attributes() -> None:
    customers, events = _frames(1_500, 3)
    frame = events.to_pandas()
    snapshot = SNAPSHOT.astype("datetime64[us]")
    recent = frame[
        (frame.timestamp < snapshot) & (frame.timestamp >= snapshot - np.timedelta64(30, "D"))
    ]
    logins = recent[recent.event_type == "login"].groupby("customer_id").size()
    usage = recent[recent.event_type == "usage"].groupby("customer_id").amount.sum()
    last90 = frame[
        (frame.timestamp < snapshot) & (frame.timestamp >= snapshot - np.timedelta64(90, "D"))
    ]
    tickets = last90[last90.event_type == "support_ticket"].groupby("customer_id").size()
    snap = customers.to_pandas().set_index("customer_id")
    joined = snap.assign(logins=logins, usage=usage, tickets=tickets).fillna(
        {"logins": 0, "usage": 0, "tickets": 0}
    )
    assert np.corrcoef(joined.logins, joined.sessions_30d)[0, 1] > 0.8
    assert np.corrcoef(joined.usage, joined.usage_minutes_30d)[0, 1] > 0.7
    assert (joined.tickets == joined.support_tickets_90d).all()
    typed = frame.event_type.astype(str)
    assert frame.amount[typed.isin(["payment", "usage"])].notna().all()
    assert frame.amount[~typed.isin(["payment", "usage"])].isna().all()


def test_cli_generate_writes_the_event_log(tmp_path: Path) -> None:
    out, log = tmp_path / "c.csv", tmp_path / "e.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnscale",
            "generate",
            "--rows",
            "50",
            "--format",
            "csv",
            "--out",
            str(out),
            "--events",
            str(log),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    header = log.read_text().splitlines()[0]
    assert header == '"customer_id","timestamp","event_type","amount"'
    assert len(log.read_text().splitlines()) - 1 == generate_events_table(50, 0).num_rows
