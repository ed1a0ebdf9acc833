from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnscale.data.quarantine import read_quarantine
from churnscale.data.schema import ColumnSpec, Role, Schema, SchemaHints
from churnscale.data.store import ingest, iter_dataset, load_info
from churnscale.data.writers import write_batches
from churnscale.exceptions import QuarantineLimitError, SourceError


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_ingest_round_trip_every_format(tmp_path: Path, small_table: pa.Table, fmt: str) -> None:
    src = tmp_path / f"data.{fmt}"
    write_batches(small_table.to_batches(), src, fmt=fmt)
    schema, info = ingest(str(src), tmp_path / "ds", hints=SchemaHints(target="churned"))
    assert info.rows == small_table.num_rows and info.rejected == 0
    assert schema.id == "customer_id"
    assert schema.role_of("region") is Role.CATEGORICAL
    stored = pa.Table.from_batches(list(iter_dataset(tmp_path / "ds")))
    assert stored.schema == schema.arrow_schema()
    assert stored.column("churned").to_pylist() == small_table.column("churned").to_pylist()
    assert stored.column("customer_id").to_pylist() == small_table.column("customer_id").to_pylist()


def test_fingerprint_same_for_every_format_and_batch_size(
    tmp_path: Path, small_table: pa.Table
) -> None:
    prints = set()
    for i, (fmt, batch_rows) in enumerate([("parquet", 1_024), ("csv", 4_096), ("parquet", 9_999)]):
        src = tmp_path / f"d{i}.{fmt}"
        write_batches(small_table.to_batches(), src, fmt=fmt)
        _, info = ingest(
            str(src),
            tmp_path / f"ds{i}",
            hints=SchemaHints(target="churned"),
            batch_rows=batch_rows,
        )
        prints.add(info.fingerprint)
    assert len(prints) == 1


def test_bad_rows_are_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    rows = ["id,amount,churn"] + [f"c{i},{i}.5,{'yes' if i % 3 else 'no'}" for i in range(200)]
    rows[10] = "c9,abc,yes"
    rows[20] = "c19,3.0,maybe"
    src.write_text("\n".join(rows) + "\n")
    _, info = ingest(str(src), tmp_path / "ds", hints=SchemaHints(id="id"), max_bad_fraction=0.05)
    assert info.rows == 198 and info.rejected == 2
    rejects = read_quarantine(tmp_path / "ds" / "quarantine.jsonl")
    assert [(r.line, r.column) for r in rejects] == [(11, "amount"), (21, "churn")]
    assert rejects[0].reason == "not a number" and rejects[0].value == "abc"


def test_impossible_dates_are_quarantined_not_fatal(tmp_path: Path) -> None:
    """ISO-shaped but impossible dates (month 13, day 40) are bad rows, like any other."""
    src = tmp_path / "d.csv"
    rows = ["id,signup,churn"] + [f"c{i},2025-01-{i % 28 + 1:02d},{i % 2}" for i in range(100)]
    rows[5] = "c4,2025-13-40,1"
    rows[7] = "c6,2025-02-30 10:00:00,0"
    rows[9] = "c8,not a date,0"
    src.write_text("\n".join(rows) + "\n")
    schema = Schema(
        (
            ColumnSpec("id", Role.ID),
            ColumnSpec("signup", Role.DATETIME),
            ColumnSpec("churn", Role.TARGET),
        )
    )
    _, info = ingest(str(src), tmp_path / "ds", schema=schema, max_bad_fraction=0.05)
    assert info.rows == 97 and info.rejected == 3
    rejects = read_quarantine(tmp_path / "ds" / "quarantine.jsonl")
    assert [(r.line, r.column, r.value) for r in rejects] == [
        (6, "signup", "2025-13-40"),
        (8, "signup", "2025-02-30 10:00:00"),
        (10, "signup", "not a date"),
    ]
    stored = pa.Table.from_batches(list(iter_dataset(tmp_path / "ds")))
    assert stored.column("signup").null_count == 0


def test_too_many_bad_rows_abort_and_leave_nothing(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_text("id,amount\n" + "".join(f"c{i},{'x' if i % 2 else i}\n" for i in range(100)))
    schema = Schema((ColumnSpec("id", Role.ID), ColumnSpec("amount", Role.NUMERIC)))
    with pytest.raises(QuarantineLimitError, match=r"50 of 100 rows"):
        ingest(str(src), tmp_path / "ds", schema=schema)
    kept = tmp_path / "ds.quarantine.jsonl"
    assert sorted(tmp_path.iterdir()) == [src, kept]
    assert len(read_quarantine(kept)) == 50


def test_existing_output_and_missing_source_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        ingest(str(tmp_path / "nope.csv"), tmp_path / "ds")
    (tmp_path / "ds").mkdir()
    src = tmp_path / "d.csv"
    src.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="already exists"):
        ingest(str(src), tmp_path / "ds")


def test_parts_have_page_checksums(tmp_path: Path, small_table: pa.Table) -> None:
    src = tmp_path / "d.parquet"
    write_batches(small_table.to_batches(), src)
    ingest(str(src), tmp_path / "ds")
    _, info = load_info(tmp_path / "ds")
    meta = pq.ParquetFile(tmp_path / "ds" / info.files[0]).metadata
    assert meta.num_rows == small_table.num_rows


OPENED: list[str] = []


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and args and isinstance(args[0], str):
        OPENED.append(args[0])


sys.addaudithook(_record_opens)  # audit hooks stay for the session; this one only appends


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ingest_opens_the_source_once(tmp_path: Path, small_table: pa.Table, fmt: str) -> None:
    """Schema inference uses the head of the same stream that is stored: one read."""
    src = tmp_path / f"d.{fmt}"
    write_batches(small_table.to_batches(), src, fmt=fmt)
    OPENED.clear()
    _, info = ingest(str(src), tmp_path / "ds", hints=SchemaHints(target="churned"))
    assert info.rows == small_table.num_rows
    assert OPENED.count(str(src)) == 1, OPENED
