"""Build a point-in-time training dataset from an event log: one row per customer per as-of date.

The log is hash-partitioned by customer into buckets on disk (:class:`Buckets`), then each
bucket is read, put in canonical order once and cut at every as-of date; features come from
:func:`features_at` on events strictly before the date, the label from events in the horizon
after it (or, with ``survival``, the days to churn and whether it came before the log's last
event: :mod:`churnscale.features.durations`). Customers without events before the date, or who
cancelled before it, are left out.
The result is a stored churnscale dataset published atomically with a checksum manifest.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.artifacts import publish_directory
from churnscale.data.fingerprint import Fingerprint
from churnscale.data.schema import DURATION_KEY, ColumnSpec, Role, Schema
from churnscale.data.store import INFO_FILE, SCHEMA_FILE, DatasetInfo, PartWriter
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.features.columns import ID
from churnscale.features.durations import DURATION, EVENT, survival_labels
from churnscale.features.eventlog import TYPED, Buckets, arrays_of, bucket_count, read_events
from churnscale.features.pointintime import EventArrays, features_at
from churnscale.features.sources import BuildSources
from churnscale.features.spec import DAY_US, FeatureSpec, date_us
from churnscale.features.static import StaticTable, partition_static

AS_OF, LABEL = "as_of", "churned"
BUCKET_ROWS = 4_000_000


def output_schema(spec: FeatureSpec, static: list[ColumnSpec], *, survival: bool = False) -> Schema:
    """Schema of the built dataset: id, as-of date, features, static columns, label (with
    ``survival``: the duration, never a feature, and the event as the target instead)."""
    columns = [ColumnSpec(ID, Role.ID), ColumnSpec(AS_OF, Role.DATETIME)]
    columns += [ColumnSpec(n, Role.NUMERIC) for n in spec.feature_names()]
    labels = [ColumnSpec(DURATION, Role.NUMERIC), ColumnSpec(EVENT, Role.TARGET)]
    labels = labels if survival else [ColumnSpec(LABEL, Role.TARGET)]
    built = {c.name for c in columns} | {c.name for c in labels}
    clash = sorted({c.name for c in static} & built)
    if clash:
        raise SchemaError("--static columns clash with built feature names", unknown=clash)
    columns += [*static, *labels]
    metadata: dict[str, Any] = {"feature_spec": spec.to_dict()}
    if survival:
        metadata[DURATION_KEY] = DURATION
    return Schema(tuple(columns), time_column=AS_OF, as_of_column=AS_OF, metadata=metadata)


def _labels(ev: EventArrays, codes: np.ndarray, as_of: int, spec: FeatureSpec) -> np.ndarray:
    ahead = (ev.time >= as_of) & (ev.time < as_of + spec.horizon * DAY_US)
    cancel = spec.event_types.index(spec.cancel_type) if spec.cancel_type else -1
    if spec.label == "cancel":
        return np.isin(codes, ev.code[ahead & (ev.kind == cancel)])
    return ~np.isin(codes, ev.code[ahead & (ev.kind != cancel)])


def _kept(cut: EventArrays, codes: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    if spec.cancel_type is None:
        return np.ones(len(codes), dtype=bool)
    cancelled = cut.code[cut.kind == spec.event_types.index(spec.cancel_type)]
    return ~np.isin(codes, cancelled)


def bucket_rows_at(
    ev: EventArrays,
    ids: pa.Array,
    as_of: date,
    spec: FeatureSpec,
    static: StaticTable | None,
    *,
    end: int | None = None,
) -> pa.RecordBatch | None:
    """Rows of one bucket at one as-of date (``ev`` canonical, coded by ``ids``' positions);
    with ``end`` (the log's last event, µs) survival labels censored there, not the label."""
    instant = date_us(as_of)
    cut = ev.before(instant)
    codes, values = features_at(cut, instant, spec)
    keep = _kept(cut, codes, spec)
    if not keep.any():
        return None
    codes = codes[keep]
    customer = ids.take(pa.array(codes))
    columns: dict[str, pa.Array] = {
        ID: customer,
        AS_OF: pa.array(np.full(len(codes), instant), pa.int64()).cast(pa.timestamp("us")),
    }
    for name, column in values.items():
        columns[name] = pa.array(column[keep], pa.float64(), from_pandas=True)
    if static is not None:
        columns.update(static.at(customer, instant))
    if end is None:
        columns[LABEL] = pa.array(_labels(ev, codes, instant, spec).astype(np.int8))
    else:
        duration, event = survival_labels(ev, codes, instant, end, spec)
        columns[DURATION], columns[EVENT] = pa.array(duration), pa.array(event)
    return pa.RecordBatch.from_pydict(columns)


def _data_end(last: int, as_of: Sequence[date], source: str) -> int:
    """The log's last event (µs), the censoring time of survival labels: after every date."""
    late = [d.isoformat() for d in as_of if date_us(d) >= last]
    if late:
        raise ConfigError(
            "--as-of",
            expected=f"dates before the last event of {source} "
            f"({np.datetime_as_string(np.datetime64(last, 'us'), unit='s')}) for --survival",
            received=",".join(late),
        )
    return last


def _bucket_events(table: pa.Table) -> tuple[EventArrays, pa.Array]:
    ids = table.column(ID).combine_chunks()
    distinct = pc.unique(ids)  # in order of first appearance: a grouped log stays in order
    code = pc.index_in(ids, value_set=distinct).to_numpy(zero_copy_only=False).astype(np.int64)
    return arrays_of(table, code).canonical(), distinct


def build_features(
    sources: BuildSources,
    out: Path,
    *,
    as_of: Sequence[date],
    spec: FeatureSpec,
    bucket_rows: int = BUCKET_ROWS,
    survival: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Schema, DatasetInfo]:
    """Write the point-in-time dataset of ``sources`` at every ``as_of`` date to ``out``
    (``survival``: with duration and event columns, see :mod:`churnscale.features.durations`)."""
    if not as_of:
        raise SchemaError("--as-of: at least one date is needed")
    result: list[tuple[Schema, DatasetInfo]] = []

    def fill(staging: Path) -> None:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.buckets-") as tmp:
            result.append(
                _build(sources, staging, Path(tmp), as_of, spec, bucket_rows, survival, on_progress)
            )

    out.parent.mkdir(parents=True, exist_ok=True)
    publish_directory(out, fill)
    return result[0]


def _build(
    sources: BuildSources,
    staging: Path,
    scratch: Path,
    as_of: Sequence[date],
    spec: FeatureSpec,
    bucket_rows: int,
    survival: bool,
    on_progress: Callable[[int], None] | None,
) -> tuple[Schema, DatasetInfo]:
    count = bucket_count(
        sources.events, bucket_rows=bucket_rows, storage_options=sources.storage_options
    )
    events = Buckets(scratch / "events", TYPED, count=count, id_column=ID)
    last = np.iinfo(np.int64).min
    for batch in read_events(sources.events, spec=spec, storage_options=sources.storage_options):
        events.write(batch)
        last = max(last, pc.max(batch.column("time")).as_py() or last)
        if on_progress is not None:
            on_progress(batch.num_rows)
    events.close()
    end = _data_end(last, as_of, sources.events) if survival else None
    static = partition_static(sources, scratch / "static", count=count)
    schema = output_schema(spec, static.columns if static else [], survival=survival)
    writer = PartWriter(staging, schema.arrow_schema())
    fingerprint = Fingerprint()
    positives = 0
    for bucket in range(count):
        ev, ids = _bucket_events(events.read(bucket))
        table = static.table(bucket) if static else None
        for day in as_of:
            rows = bucket_rows_at(ev, ids, day, spec, table, end=end)
            if rows is not None:
                rows = pa.RecordBatch.from_arrays(rows.columns, schema=schema.arrow_schema())
                writer.write(rows)
                fingerprint.update(rows)
                positives += pc.sum(rows.column(schema.target).cast(pa.int64())).as_py() or 0
    writer.close()
    if fingerprint.rows == 0:
        raise SchemaError(
            f"--events {sources.events}: no customer has events before any --as-of date"
        )
    extra = {"as_of": [d.isoformat() for d in as_of], "events": events.rows}
    extra["positive_rate"] = positives / fingerprint.rows
    if end is not None:
        extra["data_end"] = np.datetime_as_string(np.datetime64(end, "us"), unit="s")
    return schema, _save(staging, schema, sources, writer.files, fingerprint, extra)


def _save(
    staging: Path,
    schema: Schema,
    sources: BuildSources,
    files: list[str],
    fingerprint: Fingerprint,
    extra: dict[str, Any],
) -> DatasetInfo:
    schema.save(staging / SCHEMA_FILE)
    info = DatasetInfo(
        rows=fingerprint.rows,
        rejected=0,
        files=files,
        fingerprint=fingerprint.hexdigest(schema),
        sources=[s for s in (sources.events, sources.static) if s],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        extra=extra,
    )
    (staging / INFO_FILE).write_text(json.dumps(info.__dict__, indent=2) + "\n")
    return info
