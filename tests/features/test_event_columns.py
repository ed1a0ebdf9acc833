"""Event logs as they come: CDNOW's raw CSV builds with column flags alone (issue 17, part 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from churnscale.config import Settings
from churnscale.data.store import iter_dataset, load_info
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.features.builder import build_features
from churnscale.features.columns import EventColumns
from churnscale.features.sources import BuildSources
from churnscale.features.spec import FeatureSpec, feature_spec
from churnscale.model.lightgbm import LightGBMModel
from churnscale.serving.service import PredictionService
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import time_split_for

CDNOW = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "datasets"
    / "cdnow_events"
    / "CDNOW_master.csv"
)
AS_OF = "1997-07-01,1997-10-01"
#: What ``benchmarks/cdnow.py`` builds from its converted log (the path before the flags).
CONVERTED_SPEC = FeatureSpec(
    windows=(30, 91),
    event_types=("purchase",),
    amount_types=("purchase",),
    cancel_type=None,
    horizon=39 * 7,
    label="inactivity",
)
FLAGS = [
    "--time-col", "date", "--time-format", "%Y%m%d", "--event-type", "purchase",
    "--amount-col", "dollar_value",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CDNOW.is_file() and not os.environ.get("CI"), reason=f"{CDNOW} not present"
)


def churnscale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnscale", *args], capture_output=True, text=True, check=False
    )


def converted_log(out: Path) -> str:
    """The conversion script users wrote before the flags (as ``benchmarks/cdnow.py`` does)."""
    raw = pd.read_csv(CDNOW, dtype={"customer_id": str, "date": str})
    events = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "event_type": "purchase",
            "amount": raw["dollar_value"].astype(float),
        }
    )
    pq.write_table(pa.Table.from_pandas(events, preserve_index=False), out)
    return str(out)


def rows_of(dataset: Path) -> pa.Table:
    table = pa.Table.from_batches(list(iter_dataset(dataset)))
    return table.sort_by([("customer_id", "ascending"), ("as_of", "ascending")])


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cdnow") / "pit"
    built = churnscale(
        "features", "build", "--events", str(CDNOW), "--as-of", AS_OF, "--horizon", "39w",
        "--windows", "30d,91d", *FLAGS, "--out", str(out),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return out


def test_raw_cdnow_builds_with_flags_alone_and_equals_the_converted_path(
    flagged: Path, tmp_path: Path
) -> None:
    dates = [date(1997, 7, 1), date(1997, 10, 1)]
    source = BuildSources(converted_log(tmp_path / "events.parquet"))
    build_features(source, tmp_path / "converted", as_of=dates, spec=CONVERTED_SPEC)
    mine, theirs = rows_of(flagged), rows_of(tmp_path / "converted")
    assert mine.num_rows == theirs.num_rows > 23_570  # every customer at 10-01, more at 07-01
    assert mine.schema.names == theirs.schema.names
    assert mine.equals(theirs)
    stored = FeatureSpec.from_dict(load_info(flagged)[0].metadata["feature_spec"])
    assert stored.columns == EventColumns(
        time_col="date", time_format="%Y%m%d", event_type="purchase", amount_col="dollar_value"
    )
    assert stored == replace(CONVERTED_SPEC, columns=stored.columns)


def test_without_flags_the_raw_log_is_refused_naming_the_columns(tmp_path: Path) -> None:
    run = churnscale(
        "features", "build", "--events", str(CDNOW), "--as-of", "1997-10-01", "--out",
        str(tmp_path / "pit"),
    )  # fmt: skip
    assert run.returncode == 2
    assert "not an event log; missing columns: timestamp, event_type" in run.stderr


def test_a_time_that_does_not_fit_the_format_names_its_line(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,dollar_value\n1,19970101,3.5\n2,1997-01-02,4.0\n")
    run = churnscale(
        "features", "build", "--events", str(log), "--as-of", "1997-10-01", *FLAGS, "--out",
        str(tmp_path / "pit"),
    )  # fmt: skip
    assert run.returncode == 2
    assert "line 3: not a time in the format %Y%m%d, got '1997-01-02'" in run.stderr
    assert not (tmp_path / "pit").exists()


def test_a_named_column_the_log_lacks_is_refused() -> None:
    columns = EventColumns(time_col="date", event_type="purchase", amount_col="value")
    batch = pa.RecordBatch.from_pydict({"customer_id": ["1"], "date": ["1997-01-01"]})
    with pytest.raises(SchemaError, match="not an event log; missing columns: value"):
        columns.canonical(batch, source="log.csv", lines=pa.array([2]).to_numpy())


def test_the_spec_follows_the_log_and_checks_the_mapping() -> None:
    default = feature_spec()
    assert default == FeatureSpec() and "columns" not in default.to_dict()  # old specs unchanged
    constant = EventColumns(event_type="purchase")
    spec = feature_spec(columns=constant, horizon=30)
    assert (spec.event_types, spec.cancel_type, spec.label) == (("purchase",), None, "inactivity")
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="--event-type: expected one of"):
        feature_spec(columns=constant, event_types=["login"], amount_types=[])
    with pytest.raises(ConfigError, match="a column of event types or one constant type"):
        EventColumns(type_col="kind", event_type="purchase")
    with pytest.raises(ConfigError, match="event columns: expected distinct non-empty names"):
        EventColumns(time_col="customer_id")


def test_the_service_takes_events_as_the_log_has_them(flagged: Path, tmp_path: Path) -> None:
    schema, _ = load_info(flagged)
    fast = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)
    model = train_local(flagged, split=time_split_for(schema), params=fast).model
    bundle = model.save(tmp_path / "model")
    service = PredictionService(LightGBMModel.load(bundle), Settings(model=str(bundle)))
    raw = pd.read_csv(CDNOW, dtype={"customer_id": str, "date": str})
    rows = rows_of(flagged)
    latest = rows.filter(pc.equal(rows["as_of"], pa.scalar(date(1997, 10, 1)))).to_pylist()
    names = FeatureSpec.from_dict(schema.metadata["feature_spec"]).feature_names()
    for row in latest[:: len(latest) // 25]:
        log = raw[raw["customer_id"] == row["customer_id"]]
        events = [
            {"date": int(d), "n_cds": int(n), "dollar_value": float(v)}
            for d, n, v in zip(log["date"], log["n_cds"], log["dollar_value"], strict=True)
        ]
        body = {"customer_id": row["customer_id"], "as_of": "1997-10-01", "events": events}
        x = service.decoder.decode(orjson.dumps(body))
        assert {n: x[n] for n in names} == {n: row[n] for n in names}
