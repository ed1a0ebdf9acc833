"""Checksummed artifact directories: every file's SHA-256 in ``manifest.json``, verified at load.

Any directory of artifacts (a model bundle, an exported model, a checkpoint) is published with
:func:`publish_directory`: files are written into a hidden staging directory, fsynced, the
manifest written last, and the directory renamed into place, so a reader sees either nothing
or a complete, checksum-valid version. :func:`verify_directory` refuses a missing, extra,
truncated or altered file, or an edited manifest.

A single file (a report, a checkpoint, a cache record, a scored Parquet file) is replaced whole
the same way: :func:`write_atomically` for bytes or text in hand, :func:`replaced_on_success`
for a writer that streams into a path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from churnscale.exceptions import ChurnscaleError, IntegrityError, StorageError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
#: What marks a staging directory: ``.NAME.tmp-XXXXXXXX`` beside its target.
STAGING_MARK = ".tmp-"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.relative_to(directory) != Path(MANIFEST)
    )


def _self_checksum(body: dict[str, Any]) -> str:
    unsigned = {k: v for k, v in body.items() if k != "manifest_sha256"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def _manifest_body(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    body = {"version": MANIFEST_VERSION, "files": entries}
    return {**body, "manifest_sha256": _self_checksum(body)}


def write_manifest(directory: Path) -> dict[str, Any]:
    """Write ``manifest.json`` listing the size and SHA-256 of every file under ``directory``."""
    entries = {
        p.relative_to(directory).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in _files(directory)
    }
    manifest = _manifest_body(entries)
    _write_synced(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return manifest


def verify_directory(directory: Path) -> dict[str, Any]:
    """Check every file against ``manifest.json``; return the manifest or raise IntegrityError."""
    path = directory / MANIFEST
    if not path.is_file():
        raise IntegrityError(str(directory), f"no {MANIFEST}; not a published artifact")
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["files"]
        declared = manifest["manifest_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(str(path), f"unreadable manifest: {exc}") from exc
    if _self_checksum(manifest) != declared:
        raise IntegrityError(str(path), "manifest was edited (its own checksum does not match)")
    present = {p.relative_to(directory).as_posix() for p in _files(directory)}
    missing = sorted(set(entries) - present)
    extra = sorted(present - set(entries))
    if missing or extra:
        raise IntegrityError(str(directory), f"files missing {missing} or not in manifest {extra}")
    for name, entry in entries.items():
        _check_file(directory / name, entry)
    return dict(manifest)


def _check_file(path: Path, entry: dict[str, Any]) -> None:
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise IntegrityError(str(path), f"size {size} bytes, manifest says {entry['bytes']}")
    if sha256_file(path) != entry["sha256"]:
        raise IntegrityError(str(path), "SHA-256 does not match the manifest")


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_tree(directory: Path) -> None:
    for p in _files(directory):
        with p.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replaced_on_success(path: Path) -> Iterator[Path]:
    """A hidden temporary path beside ``path`` (``.NAME.XXXXXXXX.tmp``, same file system) to
    write into: renamed over ``path`` when the block ends, removed when it raises. A reader
    sees the old file or the new one, never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes | str, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8) whole; ``durable`` also fsyncs the file
    before the rename and the directory after it, so the new file survives a crash."""
    with replaced_on_success(path) as temporary:
        with temporary.open("wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
    if durable:
        _fsync_directory(path.parent)


def publish_directory(target: Path, fill: Callable[[Path], None]) -> dict[str, Any]:
    """Create ``target`` atomically: ``fill(staging)`` writes the files, then manifest + rename.

    Raises :class:`IntegrityError` if ``target`` exists and :class:`StorageError` when a write
    fails (disk full, file size limit); leaves nothing behind on failure.
    """
    if target.exists():
        raise IntegrityError(str(target), "already exists; artifacts are never overwritten")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}{STAGING_MARK}{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as exc:
        raise StorageError.from_os_error(str(target), exc) from exc
    try:
        fill(staging)
        manifest = write_manifest(staging)
        _fsync_tree(staging)
        os.rename(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, ChurnscaleError):
            raise StorageError.from_os_error(str(target), exc) from exc
        raise
    return manifest


def remove_stale_staging(parent: Path, *, older_than_s: float = 3600.0) -> list[Path]:
    """Delete staging directories under ``parent`` left by a killed publisher; return them.

    Only hidden ``.NAME.tmp-*`` directories untouched for ``older_than_s`` seconds are removed,
    so a publish still in progress elsewhere is left alone.
    """
    removed = []
    cutoff = time.time() - older_than_s
    for path in sorted(parent.glob(f".*{STAGING_MARK}*")):
        if path.is_dir() and path.stat().st_mtime <= cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
