"""The local bundle cache: verified copies of registered versions, and the aliases last seen.

Layout under the root (``<home>/bundles``)::

    churn/3/            a verified bundle (manifest.json and its files)
    churn/3.json        the version's record: manifest SHA-256, run id, when it was fetched
    churn/aliases.json  {"champion": {"version": 3, "resolved": "..."}}, for when the server is down

Bundles are installed atomically (staging directory, verify, rename), so a reader never sees a
partial bundle, and a copy that fails verification is never returned.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnscale.artifacts import verify_directory, write_atomically
from churnscale.exceptions import IntegrityError
from churnscale.registry.references import check_name, check_version

_log = logging.getLogger(__name__)
ALIASES = "aliases.json"


def now_iso() -> str:
    """The current UTC time as ISO-8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_manifest_sha(manifest: dict[str, Any], *, expected: str, where: str) -> None:
    """Refuse a bundle whose manifest is not the one recorded on the registered version."""
    if manifest.get("manifest_sha256") != expected:
        raise IntegrityError(
            where,
            f"manifest SHA-256 {manifest.get('manifest_sha256')} is not the one recorded on the "
            f"registered version ({expected}); the stored artifact was replaced",
        )


class BundleCache:
    """Verified local copies of registered bundles under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def version_dir(self, name: str, version: int) -> Path:
        """Where version ``version`` of ``name`` lives; never outside the root."""
        path = self.root / check_name(name) / str(check_version(version))
        if not path.resolve().is_relative_to(self.root):
            raise IntegrityError(str(path), "resolves outside the bundle cache")
        return path

    def cached(self, name: str, version: int, *, expected_sha: str) -> Path | None:
        """The cached copy if present, verified and matching ``expected_sha``; else None."""
        path = self.version_dir(name, version)
        if not path.is_dir():
            return None
        try:
            check_manifest_sha(verify_directory(path), expected=expected_sha, where=str(path))
        except IntegrityError as exc:
            _log.warning(
                "cached bundle %s/%s fails verification and is not used: %s", name, version, exc
            )
            return None
        return path

    def install(
        self, name: str, version: int, *, expected_sha: str, fill: Callable[[Path], Path]
    ) -> Path:
        """Download with ``fill(staging) -> bundle dir``, verify, then rename into place."""
        target = self.version_dir(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{version}.tmp-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            bundle = fill(staging)
            check_manifest_sha(
                verify_directory(bundle),
                expected=expected_sha,
                where=f"registered {name}/{version}",
            )
            self._replace(bundle, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _replace(self, bundle: Path, target: Path) -> None:
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            os.rename(target, trash)
        try:
            os.rename(bundle, target)
        except OSError:
            if not target.is_dir():  # another process won the race with an equal bundle
                raise
        shutil.rmtree(trash, ignore_errors=True)

    def write_record(self, name: str, version: int, record: dict[str, Any]) -> None:
        """Store the version's record (manifest SHA-256, run id) beside its bundle."""
        path = self.version_dir(name, version).with_suffix(".json")
        _write_json(path, {**record, "fetched": now_iso()})

    def read_record(self, name: str, version: int) -> dict[str, Any] | None:
        """The stored record of a cached version, or None."""
        return _read_json(self.version_dir(name, version).with_suffix(".json"))

    def remember_alias(self, name: str, alias: str, version: int) -> None:
        """Record that ``name@alias`` pointed at ``version`` (used when the server is down)."""
        path = self.root / check_name(name) / ALIASES
        path.parent.mkdir(parents=True, exist_ok=True)
        with (path.parent / f".{ALIASES}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # other processes update other aliases
            aliases = _read_json(path) or {}
            aliases[alias] = {"version": version, "resolved": now_iso()}
            _write_json(path, aliases)

    def alias(self, name: str, alias: str) -> dict[str, Any] | None:
        """The last recorded mapping of ``name@alias``: ``{"version": n, "resolved": iso}``."""
        entry = (_read_json(self.root / check_name(name) / ALIASES) or {}).get(alias)
        return entry if isinstance(entry, dict) else None


def _write_json(path: Path, body: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(body, indent=2, sort_keys=True))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        _log.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None
    return body if isinstance(body, dict) else None
