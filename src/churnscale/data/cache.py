"""Raw sources ingested once into a cached dataset under ``<home>/datasets``.

A command that needs a stored dataset (``churnscale tune``) accepts a raw file too: the file
is ingested the first time, and later runs with the same file (path, size, modification time)
and the same hints reuse the stored copy. Ingest publishes atomically, so a half-written
cache entry is never seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, is_dataset, load_info
from churnscale.exceptions import SchemaError, SourceError


def cache_key(source: Path, hints: SchemaHints) -> str:
    """A short digest of the file's identity (path, size, mtime) and the hints."""
    stat = source.stat()
    identity = {
        "path": str(source.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "hints": asdict(hints),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def stored_dataset(
    data: str, *, home: Path, hints: SchemaHints, storage_options: dict[str, Any] | None = None
) -> Path:
    """``data`` itself when it is a stored dataset (its target must be ``hints.target``),
    else the cached dataset ingested from the file ``data``."""
    if is_dataset(data):
        dataset = Path(data)
        schema, _ = load_info(dataset)
        if hints.target is not None and schema.target != hints.target:
            raise SchemaError(
                f"the dataset's target is {schema.target!r}, not {hints.target!r}",
                column=hints.target,
            )
        return dataset
    source = Path(data)
    if not source.is_file():
        raise SourceError(data, "neither a stored dataset nor a readable file")
    out = home / "datasets" / f"{source.stem}-{cache_key(source, hints)[:16]}"
    if not is_dataset(out):
        ingest(str(source), out, hints=hints, storage_options=storage_options)
    return out
