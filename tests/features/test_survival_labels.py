"""``features build --survival``: duration and event columns, censored at the log's end, that
agree with the binary label and train a survival model as they are."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import churnscale
from churnscale.config import Settings
from churnscale.data.store import iter_dataset, load_info
from churnscale.exceptions import ConfigError
from churnscale.model.loading import load_model

AS_OF = date(2026, 4, 1)
END = datetime(2026, 9, 30, 12)  # the log's last event: the censoring time
CENSORED = (END - datetime(2026, 4, 1)).total_seconds() / 86_400  # 182.5 days


def _log(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "events.parquet"
    ids, times, kinds = zip(*rows, strict=True)
    table = pa.table(
        {
            "customer_id": list(ids),
            "timestamp": pa.array([datetime.fromisoformat(t) for t in times], pa.timestamp("us")),
            "event_type": list(kinds),
            "amount": pa.nulls(len(rows), pa.float64()),
        }
    )
    pq.write_table(table, path)
    return path


def _hand_made(tmp_path: Path) -> Path:
    """a cancels 10 days after the as-of date; b is active to the end; c goes quiet after
    2026-04-05; d is quiet from before the as-of date; e is away 40 days and comes back; f is
    back exactly 35 days after the as-of date; g cancels at the as-of instant."""
    monthly = [(f"2026-{m:02d}-15", "login") for m in range(3, 10)]
    rows = [
        ("a", "2026-03-01", "login"),
        ("a", "2026-04-11", "cancel"),
        *[("b", t, k) for t, k in monthly],
        ("b", END.isoformat(), "login"),
        ("c", "2026-03-20", "login"),
        ("c", "2026-04-05", "usage"),
        ("d", "2026-03-25", "login"),
        *[("e", t, "login") for t in ("2026-03-30", "2026-04-10", "2026-05-20", "2026-06-10")],
        *[("e", t, "login") for t in ("2026-07-01", "2026-08-01", "2026-09-01", "2026-09-25")],
        *[("f", t, "login") for t in ("2026-03-15", "2026-05-06", "2026-06-01", "2026-07-01")],
        *[("f", t, "login") for t in ("2026-08-01", "2026-09-01", "2026-09-20")],
        ("g", "2026-03-10", "login"),
        ("g", "2026-04-01T00:00:00", "cancel"),
    ]
    return _log(tmp_path, rows)


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    table = pa.Table.from_batches(list(iter_dataset(out)))
    return {r["customer_id"]: r for r in table.to_pylist()}


def _build(events: Path, out: Path, *, horizon: int, label: str) -> dict[str, dict[str, Any]]:
    churnscale.features.build(
        events, as_of=AS_OF, out=out, horizon=horizon, label=label, survival=True
    )
    return _rows(out)


def test_known_durations_under_the_cancel_label(tmp_path: Path) -> None:
    rows = _build(_hand_made(tmp_path), tmp_path / "ds", horizon=90, label="cancel")
    got = {c: (r["duration_days"], r["event"]) for c, r in rows.items()}
    assert got == {
        "a": (10.0, 1),
        "b": (CENSORED, 0),
        "c": (CENSORED, 0),
        "d": (CENSORED, 0),
        "e": (CENSORED, 0),
        "f": (CENSORED, 0),
        "g": (0.0, 1),  # at the as-of instant: after the features' cut, within the label's
    }
    schema, info = load_info(tmp_path / "ds")
    assert schema.target == "event" and "churned" not in schema.names
    features = {c.name for c in schema.features}
    assert not features & {"duration_days", "event", "as_of"}  # labels are never features
    assert info.extra["data_end"] == "2026-09-30T12:00:00" and info.extra["positive_rate"] == 2 / 7


def test_known_durations_under_the_inactivity_label(tmp_path: Path) -> None:
    """Churn by inactivity is the day the customer has gone the horizon (35 days) without
    activity, counted from the as-of date or their last activity after it."""
    rows = _build(_hand_made(tmp_path), tmp_path / "ds", horizon=35, label="inactivity")
    got = {c: (r["duration_days"], r["event"]) for c, r in rows.items()}
    assert got == {
        "a": (35.0, 1),  # a cancel is no activity: quiet from the as-of date
        "b": (CENSORED, 0),  # never 35 days quiet before the end
        "c": (39.0, 1),  # last active 04-05, 35 days later
        "d": (35.0, 1),  # quiet from the as-of date: what the binary label calls churned
        "e": (44.0, 1),  # 04-10 → 05-20 is 40 days quiet: churned on 05-15, though back later
        "f": (35.0, 1),  # nothing in [as-of, as-of + 35 days): churned, though back at its end
        "g": (35.0, 1),
    }
    binary = churnscale.features.build(
        tmp_path / "events.parquet",
        as_of=AS_OF,
        out=tmp_path / "binary",
        horizon=35,
        label="inactivity",
    )
    assert binary.rows == 7
    labels = {c: r["churned"] for c, r in _rows(tmp_path / "binary").items()}
    assert labels == {c: int(e == 1 and d <= 35) for c, (d, e) in got.items()}


def test_survival_labels_use_only_later_events_and_features_only_earlier(tmp_path: Path) -> None:
    events = _hand_made(tmp_path)
    full = _build(events, tmp_path / "full", horizon=30, label="inactivity")
    log = pq.read_table(events)
    before = log.filter(pc.less(log["timestamp"], pa.scalar(datetime(2026, 4, 1))))
    later = log.filter(pc.greater_equal(log["timestamp"], pa.scalar(datetime(2026, 4, 1))))
    pq.write_table(pa.concat_tables([before, later.slice(0, 1)]), tmp_path / "cut.parquet")
    cut = _build(tmp_path / "cut.parquet", tmp_path / "cut", horizon=30, label="inactivity")
    labels = {"duration_days", "event"}
    for customer, row in full.items():
        assert {k: v for k, v in row.items() if k not in labels} == {
            k: v for k, v in cut[customer].items() if k not in labels
        }
    assert any(full[c]["duration_days"] != cut[c]["duration_days"] for c in full)


def test_as_of_dates_at_or_after_the_log_end_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--as-of: expected dates before the last event"):
        churnscale.features.build(
            _hand_made(tmp_path), as_of="2026-04-01,2026-10-01", out=tmp_path / "x", survival=True
        )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("generated")
    made = churnscale.generate(tmp / "c.parquet", rows=400, seed=3, events=tmp / "e.parquet")
    assert made.events is not None
    return made.events


@pytest.mark.parametrize("label", ["cancel", "inactivity"])
def test_generated_log_agrees_with_the_binary_label(
    generated: Path, tmp_path: Path, label: str
) -> None:
    """Durations lie in [0, end − as-of]; ``churned`` is exactly an event within the horizon
    (before it for a cancel, at it for inactivity), on dates whose horizon the log covers."""
    as_of, horizon = ["2026-03-31", "2026-06-30", "2026-07-31"], 30
    for out, survival in (("s", True), ("b", False)):
        churnscale.features.build(
            generated,
            as_of=as_of,
            horizon=horizon,
            label=label,
            bucket_rows=40_000,
            survival=survival,
            out=tmp_path / out,
        )
    keys = ["customer_id", "as_of"]
    survival = pa.Table.from_batches(list(iter_dataset(tmp_path / "s"))).sort_by(
        [(k, "ascending") for k in keys]
    )
    binary = pa.Table.from_batches(list(iter_dataset(tmp_path / "b"))).sort_by(
        [(k, "ascending") for k in keys]
    )
    assert survival.select(keys).equals(binary.select(keys)) and survival.num_rows > 500
    end = np.datetime64(load_info(tmp_path / "s")[1].extra["data_end"])
    left = (end - survival["as_of"].to_numpy()) / np.timedelta64(1, "D")
    duration = survival["duration_days"].to_numpy()
    event = survival["event"].to_numpy() == 1
    assert (duration >= 0).all() and (duration <= left).all()
    np.testing.assert_array_equal(duration[~event], left[~event])  # censored at the end
    within = duration < horizon if label == "cancel" else duration <= horizon
    churned = binary["churned"].to_numpy() == 1
    np.testing.assert_array_equal(churned, event & within)
    assert 0 < churned.sum() < event.sum() < len(event)  # churn beyond the horizon is seen too


@pytest.fixture
def home(tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(migrated_store) as source, sqlite3.connect(home / "mlflow.db") as target:
        source.backup(target)
    source.close()
    target.close()
    for name in ("CHURNSCALE_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURNSCALE_HOME", str(home))
    return home


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnscale", *args], capture_output=True, text=True, check=False
    )


def test_a_built_survival_dataset_trains_and_scores(
    generated: Path, tmp_path: Path, home: Path
) -> None:
    out = tmp_path / "surv"
    built = _cli(
        "features", "build", "--events", str(generated), "--horizon", "30d", "--survival",
        "--as-of", "2026-05-31,2026-06-30,2026-07-31", "--out", str(out), "--bucket-rows", "40000",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "event rate" in built.stderr
    trained = _cli(
        "train", str(out), "--duration-col", "duration_days", "--event-col", "event",
        "--horizons", "30,90", "--max-rounds", "30", "--threads", "1", "--json",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["model"] == "churn/1" and summary["model_type"] == "survival"
    assert summary["metrics"]["c_harrell"] > 0.5  # 400 customers: some signal, no more
    model = load_model("churn/1", Settings(home=home))
    assert not {"duration_days", "event", "as_of"} & set(model.feature_names)
    rows = pa.Table.from_batches(list(iter_dataset(out)))
    source = tmp_path / "customers.parquet"
    pq.write_table(rows.drop_columns(["duration_days", "event"]).slice(0, 200), source)
    scored = _cli("score", str(source), "--model", "churn/1", "--out", str(tmp_path / "s.parquet"))
    assert scored.returncode == 0, scored.stderr
    table = pq.read_table(tmp_path / "s.parquet")
    assert table.num_rows == 200
    s30, s90 = table["survival_30"].to_numpy(), table["survival_90"].to_numpy()
    assert ((s30 >= s90) & (s90 >= 0) & (s30 <= 1)).all()
