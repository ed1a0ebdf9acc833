"""R16: 1,000 injected faults in a 1,000,000-row CSV, all quarantined exactly, none coerced.

Faults of eight kinds (extra or missing field, text in a number, invalid UTF-8, unterminated
or stray quote, quoted line break, unknown label) at seeded rows. Pass figure: 1,000/1,000
quarantined with file, line and reason; 999,000 rows stored; 0 silent coercions: the stored
rows are exactly (by row hash) the clean file's rows less the faulty ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from churnscale.data.csv_scan import BAD_UTF8, BROKEN_QUOTING, line_break_in_quotes, wrong_width
from churnscale.data.fingerprint import row_hashes
from churnscale.data.quarantine import read_quarantine
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, iter_dataset, load_info
from churnscale.data.synthetic import GeneratorSpec, generate
from churnscale.data.writers import write_batches

ROWS = 1_000_000
FAULTS = 1_000
WIDTH = 26
TENURE, CONTRACT, PLAN, REGION, MONTHLY, CHURNED = 3, 4, 5, 7, 8, 25
LABEL_REASON = "label outside the known values (1/0, yes/no, true/false)"

#: (line, reason, column) expected for a fault at ``line`` (the line its record starts on).
Expected = Callable[[int], tuple[int, str, str | None]]


def _set(fields: list[bytes], index: int, value: bytes) -> bytes:
    fields[index] = value
    return b",".join(fields)


#: Each kind: how it changes a row's fields, how many extra lines it adds, what is expected.
KINDS: dict[str, tuple[Callable[[list[bytes]], bytes], int, Expected]] = {
    "extra field": (
        lambda f: b",".join([*f, b"extra"]),
        0,
        lambda line: (line, wrong_width(WIDTH, WIDTH + 1), None),
    ),
    "missing field": (
        lambda f: b",".join(f[:-1]),
        0,
        lambda line: (line, wrong_width(WIDTH, WIDTH - 1), None),
    ),
    "text in a number": (
        lambda f: _set(f, MONTHLY, b"abc"),
        0,
        lambda line: (line, "not a number", "monthly_charges"),
    ),
    "invalid UTF-8": (
        lambda f: _set(f, REGION, b'"region_\xff\xfe"'),
        0,
        lambda line: (line, BAD_UTF8, None),
    ),
    "unterminated quote": (
        lambda f: _set(f, PLAN, f[PLAN].rstrip(b'"')),
        0,
        lambda line: (line, BROKEN_QUOTING, None),
    ),
    "stray quote": (
        lambda f: _set(f, TENURE, f[TENURE] + b'"'),
        0,
        lambda line: (line, BROKEN_QUOTING, None),
    ),
    "quoted line break": (
        lambda f: _set(f, CONTRACT, f[CONTRACT][:3] + b"\n" + f[CONTRACT][3:]),
        1,
        lambda line: (line, line_break_in_quotes(line, line + 1), None),
    ),
    "unknown label": (
        lambda f: _set(f, CHURNED, b"2"),
        0,
        lambda line: (line, LABEL_REASON, "churned"),
    ),
}


def faulty_rows(seed: int) -> np.ndarray:
    """The 0-based data rows :func:`inject_faults` breaks (even ones: a good row between two)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ROWS // 2, FAULTS, replace=False) * 2)


def inject_faults(path: Path, seed: int) -> list[tuple[int, str, str | None]]:
    """Rewrite ``path`` with :data:`FAULTS` faults at seeded rows; return what to expect."""
    rows = faulty_rows(seed)
    rng = np.random.default_rng(seed + 1)
    kinds = rng.permutation(np.arange(FAULTS) % len(KINDS))
    names = list(KINDS)
    lines = path.read_bytes().split(b"\n")
    expected = []
    shift = 0
    for row, kind in zip(rows.tolist(), kinds.tolist(), strict=True):
        change, extra_lines, expect = KINDS[names[kind]]
        lines[row + 1] = change(lines[row + 1].split(b","))
        expected.append(expect(row + 2 + shift))
        shift += extra_lines
    path.write_bytes(b"\n".join(lines))
    return expected


def _hashes(dataset: Path) -> np.ndarray:
    return np.concatenate([row_hashes(batch) for batch in iter_dataset(dataset)])


@pytest.mark.slow
@pytest.mark.reliability
def test_every_injected_fault_is_quarantined_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    write_batches(generate(GeneratorSpec(ROWS, seed=5)), path, fmt="csv")
    ingest(str(path), tmp_path / "clean", hints=SchemaHints(target="churned"))
    clean = _hashes(tmp_path / "clean")  # in file order: row i is data row i
    expected = inject_faults(path, seed=17)
    out = tmp_path / "ds"
    schema, info = ingest(
        str(path), out, hints=SchemaHints(target="churned"), max_bad_fraction=0.01
    )
    rejects = read_quarantine(out / "quarantine.jsonl")
    assert sorted((r.line, r.reason, r.column) for r in rejects) == sorted(expected)
    assert all(r.source == str(path) for r in rejects)
    assert info.rows == ROWS - FAULTS and info.rejected == FAULTS
    assert sum(batch.num_rows for batch in iter_dataset(out)) == ROWS - FAULTS
    _, stored = load_info(out)
    for name in stored.files:
        assert pq.read_schema(out / name).remove_metadata() == schema.arrow_schema()
    good = np.delete(clean, faulty_rows(17))
    stored_hashes = _hashes(out)
    coerced = int(np.count_nonzero(np.sort(stored_hashes) != np.sort(good)))
    print(f"R16: {len(rejects)}/{FAULTS} quarantined, {info.rows:,} stored, {coerced} coerced")
    assert coerced == 0
