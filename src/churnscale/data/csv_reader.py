"""CSV and TSV files as chunks of string columns with physical line numbers.

First version: one record per line; the quarantine-grade reader (quoted newlines, broken
quoting, bad encoding) replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

from churnscale.data.quarantine import Reject
from churnscale.data.readers import Chunk
from churnscale.exceptions import SourceError


def read_csv_chunks(fs: Any, name: str, *, delimiter: str, batch_rows: int) -> Iterator[Chunk]:
    """Stream ``name`` as string-typed chunks of at most ``batch_rows`` rows."""
    path = name.split("://", 1)[1] if "://" in name else name
    compression = "gzip" if name.endswith(".gz") else None
    with fs.open(path, "rb", compression=compression) as handle:
        header = handle.readline().decode("utf-8-sig").rstrip("\r\n").split(delimiter)
        handle.seek(0)
        rejects: list[Reject] = []

        def on_invalid(row: Any) -> str:
            rejects.append(Reject(name, -1, "wrong number of fields", value=str(row.text)[:200]))
            return "skip"

        try:
            reader = pv.open_csv(
                handle,
                read_options=pv.ReadOptions(block_size=32 << 20, encoding="utf8"),
                parse_options=pv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
                convert_options=pv.ConvertOptions(
                    column_types={h: pa.string() for h in header}, strings_can_be_null=False
                ),
            )
        except pa.ArrowInvalid as exc:
            raise SourceError(name, f"cannot parse CSV: {exc}") from exc
        line = 2
        for batch in reader:
            for start in range(0, batch.num_rows, batch_rows):
                part = batch.slice(start, batch_rows)
                lines = np.arange(line, line + part.num_rows, dtype=np.int64)
                line += part.num_rows
                yield Chunk(part, name, lines, rejects[:])
                rejects.clear()
