"""Registry fixtures: a migrated MLflow SQLite store copied per test, and small dummy bundles."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from churnscale.artifacts import publish_directory
from churnscale.config import Settings
from churnscale.registry import Registry

BundleMaker = Callable[..., Path]


@pytest.fixture
def settings(tmp_path: Path, migrated_store: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(migrated_store) as source, sqlite3.connect(home / "mlflow.db") as target:
        source.backup(target)
    source.close()
    target.close()
    return Settings(home=home, tracking_uri=None)


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry(settings)


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleMaker:
    """Publish a dummy bundle (a model text file and metadata.json) and return its directory."""

    def make(label: str, *, fingerprint: str | None = "fp-" + "0" * 8) -> Path:
        target = tmp_path / "bundles-src" / label

        def fill(staging: Path) -> None:
            (staging / "model.txt").write_text(f"model {label}\n" + "tree\n" * 50)
            metadata = {"label": label}
            if fingerprint:
                metadata["data_fingerprint"] = fingerprint
            (staging / "metadata.json").write_text(json.dumps(metadata))

        publish_directory(target, fill)
        return target

    return make


def same_files(a: Path, b: Path) -> bool:
    """True when two directories hold the same relative paths with the same bytes."""
    files_a = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    return files_a == files_b
