from __future__ import annotations

import gzip
from pathlib import Path

import fsspec
import pytest

from churnscale.data import csv_reader
from churnscale.data.csv_reader import read_csv_chunks
from churnscale.data.csv_scan import (
    BAD_UTF8,
    BROKEN_QUOTING,
    STRAY_RETURN,
    line_break_in_quotes,
    wrong_width,
)
from churnscale.data.quarantine import Reject, read_quarantine
from churnscale.data.readers import read_chunks
from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.data.store import ingest
from churnscale.exceptions import ConfigError, SourceError

Rows = list[dict[str, str]]


def read_all(
    path: Path, *, delimiter: str = ",", batch_rows: int = 1_000, **options: int
) -> tuple[Rows, list[int], list[Reject]]:
    """Every row, line and reject of ``path``, read by the CSV reader."""
    rows: Rows = []
    lines: list[int] = []
    rejects: list[Reject] = []
    fs = fsspec.filesystem("file")
    for chunk in read_csv_chunks(
        fs, str(path), delimiter=delimiter, batch_rows=batch_rows, **options
    ):
        assert chunk.batch.num_rows == len(chunk.lines) <= batch_rows
        rows += chunk.batch.to_pylist()
        lines += chunk.lines.tolist()
        rejects += chunk.rejects
    return rows, lines, rejects


def write(tmp_path: Path, content: bytes, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_clean_file_gets_physical_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, b'id,name,n\nc1,"a, b",1\n\nc2,"say ""hi""",2\n')
    rows, lines, rejects = read_all(path)
    assert rows == [
        {"id": "c1", "name": "a, b", "n": "1"},
        {"id": "c2", "name": 'say "hi"', "n": "2"},
    ]
    assert lines == [2, 4] and rejects == []


def test_wrong_number_of_fields_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    _, lines, rejects = read_all(path)
    assert lines == [2, 5]
    assert [(r.line, r.reason, r.value) for r in rejects] == [
        (3, wrong_width(3, 2), "4,5"),
        (4, wrong_width(3, 4), "6,7,8,9"),
    ]
    assert rejects[0].reason == "wrong number of fields: expected 3, got 2"


def test_invalid_utf8_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\né,1\n".encode() + b"\xff,2\n" + "ü,3\n".encode())
    rows, lines, rejects = read_all(path)
    assert [r["a"] for r in rows] == ["é", "ü"] and lines == [2, 4]
    assert [(r.line, r.reason) for r in rejects] == [(3, BAD_UTF8)]


def test_unterminated_quote_is_rejected_and_the_next_line_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1,"open\n2,ok\n3,x"y\n4,ok\n5,"last')
    rows, lines, rejects = read_all(path)
    assert [r["a"] for r in rows] == ["2", "4"] and lines == [3, 5]
    assert [(r.line, r.reason) for r in rejects] == [
        (2, BROKEN_QUOTING),
        (4, BROKEN_QUOTING),
        (6, BROKEN_QUOTING),
    ]


def test_line_break_inside_quotes_is_one_reject_spanning_its_lines(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b,c\n1,"x\ny\n\nz",2\n3,4,5\n')
    rows, lines, rejects = read_all(path)
    assert rows == [{"a": "3", "b": "4", "c": "5"}] and lines == [6]
    assert [(r.line, r.reason) for r in rejects] == [(2, line_break_in_quotes(2, 5))]
    assert rejects[0].reason == "line break inside a quoted field (lines 2–5)"


def test_a_good_row_is_never_swallowed_by_a_quote(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b,c\n1,"x,2\n3,4,5\n6,y",7\n')
    _, lines, rejects = read_all(path)
    assert lines == [3]
    assert [(r.line, r.reason) for r in rejects] == [(2, BROKEN_QUOTING), (4, BROKEN_QUOTING)]


def test_multi_line_values_are_read_when_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1,"x\ny"\n2,"p\nq\nr\ns"\n3,z\n')
    rows, lines, rejects = read_all(path, max_record_lines=3)
    assert rows == [{"a": "1", "b": "x\ny"}, {"a": "3", "b": "z"}] and lines == [2, 8]
    assert [(r.line, r.reason) for r in rejects] == [(4, line_break_in_quotes(4, 7))]


def test_quote_the_scan_misreads_is_checked_by_the_parser(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b,c\nx"a,b"y,2,3\n1,2,3\n')
    _, lines, rejects = read_all(path)
    assert lines == [3]
    assert [(r.line, r.reason) for r in rejects] == [(2, wrong_width(3, 4))]


def test_crlf_bom_and_final_line_without_newline(tmp_path: Path) -> None:
    path = write(tmp_path, b'\xef\xbb\xbfid,v\r\nc1,1\r\n\r\nc2,"2\r\n3"\r\nc3,3')
    rows, lines, rejects = read_all(path)
    assert rows == [{"id": "c1", "v": "1"}, {"id": "c3", "v": "3"}] and lines == [2, 6]
    assert [(r.line, r.reason) for r in rejects] == [(4, line_break_in_quotes(4, 5))]


def test_gzip_and_tsv(tmp_path: Path) -> None:
    content = b"id\tname\nc1\tx,y\nc2\tz\textra\nc3\t\n"
    path = tmp_path / "d.tsv.gz"
    path.write_bytes(gzip.compress(content))
    chunks = list(read_chunks(str(path), batch_rows=10))
    rows = [row for c in chunks for row in c.batch.to_pylist()]
    assert rows == [{"id": "c1", "name": "x,y"}, {"id": "c3", "name": ""}]
    assert [line for c in chunks for line in c.lines.tolist()] == [2, 4]
    assert [(r.line, r.reason) for c in chunks for r in c.rejects] == [(3, wrong_width(2, 3))]


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"d\.csv: empty file: expected a header line"):
        read_all(write(tmp_path, b""))
    with pytest.raises(SourceError, match="empty file"):
        read_all(write(tmp_path, b"\xef\xbb\xbf\n\n", "e.csv"))


def test_bad_header_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"line 1 \(header\): invalid UTF-8"):
        read_all(write(tmp_path, b"a,\xff\n1,2\n"))
    with pytest.raises(SourceError, match=r"line 1 \(header\): broken quoting"):
        read_all(write(tmp_path, b'a,"b\n1,2\n'))
    with pytest.raises(SourceError, match=r"line 1 \(header\) is blank"):
        read_all(write(tmp_path, b"\n1,2\n"))
    with pytest.raises(SourceError, match=r"line 1 \(header\): carriage return inside the line"):
        read_all(write(tmp_path, b"a,b\r1,2\r3,4\r"))
    with pytest.raises(SourceError, match=r"line 1 \(header\): field larger than field limit"):
        read_all(write(tmp_path, b"a," + b"b" * 200_000 + b"\n1,2\n"))
    with pytest.raises(SourceError, match=r"line 1 \(header\): repeated column names: a, b$"):
        read_all(write(tmp_path, b"b,a,b,c,a\n1,2,3,4,5\n"))


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read_all(write(tmp_path, b"a,b\n")) == ([], [], [])
    with pytest.raises(SourceError, match="no readable rows"):
        ingest(str(tmp_path / "d.csv"), tmp_path / "ds")


def test_a_line_with_no_end_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "MAX_RECORD_BYTES", 1_000)
    path = write(tmp_path, b"a,b\n1,2\n" + b"x" * 5_000)
    with pytest.raises(SourceError, match=r"line 3: no line end within"):
        read_all(path, block_bytes=100)


def test_ingest_reports_type_errors_on_physical_lines(tmp_path: Path) -> None:
    body = ["c1,1.5,yes", 'c2,"2\n.5",no', "c3,abc,no", "c4,7,maybe", "c5,x,y,z", "c6,3,no"]
    path = write(tmp_path, ("id,amount,churn\n" + "\n".join(body) + "\n").encode())
    schema = Schema(
        (
            ColumnSpec("id", Role.ID),
            ColumnSpec("amount", Role.NUMERIC),
            ColumnSpec("churn", Role.TARGET),
        )
    )
    _, info = ingest(str(path), tmp_path / "ds", schema=schema, max_bad_fraction=1.0)
    assert info.rows == 2 and info.rejected == 4
    found = [
        (r.line, r.column, r.reason.split(":")[0])
        for r in read_quarantine(tmp_path / "ds" / "quarantine.jsonl")
    ]
    assert sorted(found) == [
        (3, None, "line break inside a quoted field (lines 3–4)"),
        (5, "amount", "not a number"),
        (6, "churn", "label outside the known values (1/0, yes/no, true/false)"),
        (7, None, "wrong number of fields"),
    ]


def test_quotes_in_odd_places_are_read_as_a_strict_parser_would(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\nx""y,1\n"ab"c,2\na",",\n3,4\n')
    rows, lines, rejects = read_all(path)
    assert rows == [{"a": 'x""y', "b": "1"}, {"a": "3", "b": "4"}] and lines == [2, 5]
    assert [(r.line, r.reason) for r in rejects] == [(3, BROKEN_QUOTING), (4, BROKEN_QUOTING)]


def test_carriage_return_inside_a_line_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\r\n1,x\ry\r\n2,z\r\n")
    rows, lines, rejects = read_all(path)
    assert rows == [{"a": "2", "b": "z"}] and lines == [3]
    assert [(r.line, r.reason) for r in rejects] == [(2, STRAY_RETURN)]


@pytest.mark.parametrize("option", ["batch_rows", "block_bytes", "max_record_lines"])
def test_sizes_must_be_positive(tmp_path: Path, option: str) -> None:
    path = write(tmp_path, b"a,b\n1,2\n")
    options = {"batch_rows": 10, option: 0}
    with pytest.raises(ConfigError, match=f"{option}: expected a positive integer, got 0"):
        read_all(path, **options)
