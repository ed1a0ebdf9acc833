"""The registry on a PostgreSQL backend (a fresh database per test, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnscale.config import Settings
from churnscale.exceptions import IntegrityError
from churnscale.registry import Registry
from conftest import BundleMaker, same_files

PG = "postgresql://postgres@127.0.0.1:5432"


def _admin(sql: str) -> None:
    import psycopg2

    try:
        connection = psycopg2.connect(f"{PG}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        if os.environ.get("CI"):  # CI machines run PostgreSQL: its absence there is a failure
            raise
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432: {exc}")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    name = f"churnscale_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield f"{PG}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.integration
def test_register_promote_resolve_on_postgres(
    postgres_uri: str, tmp_path: Path, make_bundle: BundleMaker
) -> None:
    registry = Registry(Settings(home=tmp_path / "home", tracking_uri=postgres_uri))
    bundles = [make_bundle("a"), make_bundle("b")]
    for bundle in bundles:
        with registry.run(experiment="churn", params={"rows": 10}) as run:
            run.log_metrics({"auc": 0.7})
            run.register_bundle(bundle, name="churn")
    registry.promote("churn", 2, alias="champion")
    assert same_files(registry.resolve("churn@champion"), bundles[1])
    assert same_files(registry.resolve("churn/1"), bundles[0])
    assert [(v.version, v.aliases) for v in registry.list_models()] == [(1, ()), (2, ("champion",))]
    stored = Path(registry.client.get_run(run.run_id).info.artifact_uri.removeprefix("file://"))
    (stored / "bundle" / "model.txt").write_text("swapped")
    fresh = Registry(Settings(home=tmp_path / "other-home", tracking_uri=postgres_uri))
    with pytest.raises(IntegrityError, match="size"):
        fresh.resolve("churn@champion")
