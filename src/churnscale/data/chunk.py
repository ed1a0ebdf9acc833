"""``Chunk``: what every reader yields, a bounded batch of one file's rows with their lines."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from churnscale.data.quarantine import Reject


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
