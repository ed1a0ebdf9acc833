from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnscale.data.store import iter_dataset, load_info
from churnscale.exceptions import SchemaError
from churnscale.features.builder import build_features
from churnscale.features.customer import features_for_customer
from churnscale.features.sources import BuildSources
from churnscale.features.spec import DEFAULT_EVENT_TYPES, FeatureSpec

AS_OF = date(2026, 1, 1)
START = datetime(2025, 3, 1)
SPEC = FeatureSpec(windows=(7, 30), horizon=60)

Event = dict[str, Any]

events_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.sampled_from(["a", "b", "c", "d", "e"]),
            "timestamp": st.integers(0, 400 * 86_400).map(lambda s: START + timedelta(seconds=s)),
            "event_type": st.sampled_from(DEFAULT_EVENT_TYPES),
            "amount": st.one_of(st.none(), st.floats(-50, 500, allow_nan=False)),
        }
    ),
    min_size=1,
    max_size=40,
)
later_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.sampled_from(["a", "b", "c", "d", "e", "new"]),
            "timestamp": st.integers(0, 300 * 86_400).map(
                lambda s: datetime(2026, 1, 1) + timedelta(seconds=s)
            ),
            "event_type": st.sampled_from(DEFAULT_EVENT_TYPES),
            "amount": st.one_of(st.none(), st.floats(0, 500, allow_nan=False)),
        }
    ),
    min_size=1,
    max_size=20,
)
SEED_EVENT: Event = {  # a customer who is active before the as-of date and never cancels
    "customer_id": "seed",
    "timestamp": datetime(2025, 6, 1, 12),
    "event_type": "login",
    "amount": None,
}
EVENT_COLUMNS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("amount", pa.float64()),
    ]
)


def _write(events: list[Event], path: Path) -> str:
    pq.write_table(pa.Table.from_pylist(events, schema=EVENT_COLUMNS), path)
    return str(path)


def _build(events: list[Event], root: Path, name: str, **kwargs: Any) -> pa.Table:
    source = _write(events, root / f"{name}.parquet")
    spec = kwargs.pop("spec", SPEC)
    as_of = kwargs.pop("as_of", [AS_OF])
    build_features(BuildSources(source), root / name, as_of=as_of, spec=spec, **kwargs)
    table = pa.Table.from_batches(list(iter_dataset(root / name)))
    return table.sort_by([("customer_id", "ascending"), ("as_of", "ascending")])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy, later=later_strategy, bucket_rows=st.sampled_from([3, 10**6]))
def test_events_at_or_after_the_as_of_date_never_change_features(
    events: list[Event], later: list[Event], bucket_rows: int
) -> None:
    log = [SEED_EVENT, *events]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        before = _build(log, root, "before", bucket_rows=bucket_rows)
        after = _build(log + later, root, "after", bucket_rows=10**6 // bucket_rows)
    assert after.drop(["churned"]).equals(before.drop(["churned"]))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy)
def test_one_customer_path_equals_the_batch_row(events: list[Event]) -> None:
    log = [SEED_EVENT, *events]
    with tempfile.TemporaryDirectory() as tmp:
        table = _build(log, Path(tmp), "ds", bucket_rows=4, as_of=[date(2025, 9, 1), AS_OF])
    for row in table.to_pylist():
        mine = [
            {k: v for k, v in e.items() if k != "customer_id"}
            for e in log
            if e["customer_id"] == row["customer_id"]
        ]
        single = features_for_customer(mine, as_of=row["as_of"].date(), spec=SPEC)
        assert single == {k: row[k] for k in SPEC.feature_names()}


def _event(
    customer: str, when: datetime, kind: str = "login", amount: float | None = None
) -> Event:
    return {"customer_id": customer, "timestamp": when, "event_type": kind, "amount": amount}


def _labels(table: pa.Table) -> dict[str, int]:
    return dict(zip(table["customer_id"].to_pylist(), table["churned"].to_pylist(), strict=True))


def test_label_rules_cancel_within_horizon_and_exclusions(tmp_path: Path) -> None:
    t = datetime(2026, 1, 1)
    log = [
        _event("in_horizon", t - timedelta(days=3)),
        _event("in_horizon", t + timedelta(days=59, hours=23), "cancel"),
        _event("at_as_of", t - timedelta(days=3)),
        _event("at_as_of", t, "cancel"),
        _event("after_horizon", t - timedelta(days=3)),
        _event("after_horizon", t + timedelta(days=60), "cancel"),
        _event("stays", t - timedelta(days=1)),
        _event("cancelled_before", t - timedelta(days=10)),
        _event("cancelled_before", t - timedelta(seconds=1), "cancel"),
        _event("not_yet_customer", t, "login"),
    ]
    table = _build(log, tmp_path, "ds")
    assert _labels(table) == {"after_horizon": 0, "at_as_of": 1, "in_horizon": 1, "stays": 0}
    schema, info = load_info(tmp_path / "ds")
    assert (schema.id, schema.target, schema.as_of_column) == ("customer_id", "churned", "as_of")
    assert info.extra["positive_rate"] == pytest.approx(0.5)
    assert FeatureSpec.from_dict(schema.metadata["feature_spec"]) == SPEC


def test_inactivity_label_counts_any_activity_in_the_horizon(tmp_path: Path) -> None:
    t = datetime(2026, 1, 1)
    log = [
        _event("active", t - timedelta(days=3)),
        _event("active", t + timedelta(days=10), "payment", 9.5),
        _event("silent", t - timedelta(days=3)),
        _event("silent", t + timedelta(days=61)),
        _event("only_cancels", t - timedelta(days=3)),
        _event("only_cancels", t + timedelta(days=5), "cancel"),
    ]
    spec = FeatureSpec(windows=(30,), horizon=60, label="inactivity")
    table = _build(log, tmp_path, "ds", spec=spec)
    assert _labels(table) == {"active": 0, "only_cancels": 1, "silent": 1}


def test_feature_values_on_a_hand_made_log(tmp_path: Path) -> None:
    t = datetime(2026, 1, 1)
    log = [
        _event("x", t - timedelta(days=40), "payment", 10.0),
        _event("x", t - timedelta(days=20), "payment", 20.0),
        _event("x", t - timedelta(days=10), "login"),
        _event("x", t - timedelta(days=4), "usage", 30.0),
        _event("x", t + timedelta(days=1), "payment", 1e6),
    ]
    row = _build(log, tmp_path, "ds").to_pylist()[0]
    assert row["tenure_days"] == 40 and row["recency_days"] == 4
    assert row["recency_days_payment"] == 20 and row["recency_days_support_ticket"] is None
    assert (row["gap_mean_days"], row["gap_max_days"]) == (12, 20)
    assert row["gap_std_days"] == pytest.approx(np.std([20, 10, 6]))
    assert (row["count_total"], row["count_7d"], row["count_30d"]) == (4, 1, 3)
    assert row["amount_total_payment"] == 30 and row["amount_mean_payment"] == 15
    assert row["amount_payment_30d"] == 20
    assert row["count_trend_30d"] == pytest.approx(np.log(4 / 2))


def test_one_customer_path_reads_text_and_rejects_bad_events() -> None:
    events = [
        {"timestamp": "2025-12-01T10:00:00", "event_type": "payment", "amount": 12.5},
        {"timestamp": "2025-12-21", "event_type": "login"},
        {"timestamp": "2026-01-01", "event_type": "payment", "amount": 99.0},
    ]
    x = features_for_customer(events, as_of="2026-01-01", spec=SPEC)
    assert x["count_total"] == 2 and x["amount_total_payment"] == 12.5
    assert x["recency_days"] == 11 and x["recency_days_usage"] is None
    empty = features_for_customer([], as_of=AS_OF, spec=SPEC)
    assert empty["count_total"] == 0.0 and empty["tenure_days"] is None
    with pytest.raises(
        SchemaError, match=r"events \(request\) line 2: event_type must be one of login"
    ):
        features_for_customer(
            [events[0], {"timestamp": "2025-12-02", "event_type": "refund"}], as_of=AS_OF, spec=SPEC
        )
    with pytest.raises(SchemaError, match="line 1: not a date or timestamp"):
        features_for_customer(
            [{"timestamp": "yesterday", "event_type": "login"}], as_of=AS_OF, spec=SPEC
        )
