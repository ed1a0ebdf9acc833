"""What every reader yields and reads into: ``Chunk``, a bounded batch of one file's rows with
their lines, and ``SchemaSlot``, the schema the rows are read in (given, or inferred)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from churnscale.data.quarantine import Reject
from churnscale.data.schema import Schema, SchemaHints, infer_schema

#: Rows a schema is inferred from (the head of a stream read before the rest).
SAMPLE_ROWS = 50_000


@dataclass
class Chunk:
    """Up to ``batch_rows`` rows of one file, each row's line number, and the reader's rejects.

    ``conformed``: the rows are already in the schema's types and ``rejects`` holds the rows that
    did not fit it as well (the CSV reader does this when given a schema slot).
    """

    batch: pa.RecordBatch
    source: str
    lines: np.ndarray
    rejects: list[Reject] = field(default_factory=list)
    conformed: bool = False
    #: With ``conformed``: each row's fingerprint hash, computed by the reader.
    row_hashes: np.ndarray | None = None


@dataclass
class SchemaSlot:
    """The schema rows are read in: given, or inferred from the first rows of the stream.

    A reader that can parse straight into the schema's types (CSV) does so once the schema is
    known, and infers it from the first :data:`SAMPLE_ROWS` rows itself when it holds them all.
    """

    schema: Schema | None = None
    hints: SchemaHints | None = None
    #: Rows handed out as text before the schema was known (then a reader may not infer it).
    raw_rows: int = 0

    def infer(self, sample: pa.Table) -> Schema:
        """Infer the schema from ``sample`` (the stream's first rows) and keep it."""
        self.schema = infer_schema(sample, self.hints)
        return self.schema
