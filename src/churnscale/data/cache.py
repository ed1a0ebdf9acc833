"""Raw sources given to ``train`` or ``tune`` are ingested once into a cached stored dataset.

A local file, directory or glob is keyed by its path, the schema flags and each file's size
and modification time, so an edited file is ingested again; remote sources (``s3://``) are
ingested into a fresh directory every time (no cheap change check), removed by the caller.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from churnscale.config import Settings
from churnscale.data.schema import Schema, SchemaHints
from churnscale.data.store import ingest, is_dataset, load_info
from churnscale.exceptions import SchemaError, SourceError


def _local_files(source: str) -> list[Path]:
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return sorted(Path(p) for p in glob.glob(source) if Path(p).is_file())


def cache_key(source: str, hints: SchemaHints, schema: Schema | None) -> str | None:
    """A key that changes when the source's files or the schema flags change; None if remote."""
    if "://" in source:
        return None
    files = _local_files(source)
    if not files:
        raise SourceError(source, "no such file, directory or matching glob")
    stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    flags: dict[str, Any] = {
        "hints": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(hints).items()},
        "schema": schema.to_dict() if schema is not None else None,
    }
    text = json.dumps({"files": stats, "flags": flags}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@contextmanager
def stored_dataset(
    source: str,
    *,
    settings: Settings,
    hints: SchemaHints | None = None,
    schema: Schema | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Path]:
    """A stored dataset for ``source``: itself if already one, else a (cached) ingest of it."""
    hints = hints or SchemaHints()
    if is_dataset(source):
        stored, _ = load_info(Path(source))
        if hints.target is not None and stored.target != hints.target:
            raise SchemaError(
                f"the dataset's target is {stored.target!r}, not {hints.target!r}",
                column=hints.target,
            )
        yield Path(source)
        return
    key = cache_key(source, hints, schema)
    root = settings.home / "datasets"
    root.mkdir(parents=True, exist_ok=True)
    if key is not None:
        out = root / key
        if not is_dataset(out):
            _ingest(source, out, hints, schema, settings, on_progress)
        yield out
        return
    out = root / f"remote-{hashlib.sha256(source.encode()).hexdigest()[:12]}-{id(hints):x}"
    shutil.rmtree(out, ignore_errors=True)
    _ingest(source, out, hints, schema, settings, on_progress)
    try:
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _ingest(
    source: str,
    out: Path,
    hints: SchemaHints,
    schema: Schema | None,
    settings: Settings,
    on_progress: Callable[[int], None] | None,
) -> None:
    ingest(
        source,
        out,
        hints=hints,
        schema=schema,
        storage_options=settings.storage_options(),
        batch_rows=settings.batch_rows,
        max_bad_fraction=settings.max_bad_fraction,
        on_progress=on_progress,
    )
