"""R21: 8 processes registering and promoting at once, 50 times each, on one registry store.

Pass figure, on the default SQLite store and on PostgreSQL (127.0.0.1:5432): 400 unique
versions numbered 1..400 (50 rounds, the default CI runs: ~1 minute for both stores, idle machine),
each carrying the manifest checksum of its own bundle; every read of ``churn@champion`` during
the run resolves to an existing, checksum-verified version; 0 lost updates (every run, version
and tag written is there at the end, and the final alias is the last promotion made).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_support import settings_with_store

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.config import Settings
from churnscale.exceptions import ModelNotFoundError
from churnscale.registry import Registry

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.integration]
WORKERS = 8
#: The row's 50 rounds (400 versions per store); ``CHURNSCALE_R21_ROUNDS`` changes it.
ROUNDS = int(os.environ.get("CHURNSCALE_R21_ROUNDS", "50"))
PG = "postgresql://postgres@127.0.0.1:5432"

#: What one promotion did: (started, finished, version), monotonic clock of the machine.
Promotion = tuple[float, float, int]


def _register_and_promote(
    home: str, uri: str | None, worker: int
) -> list[tuple[int, str, Promotion]]:
    registry = Registry(Settings(home=Path(home), tracking_uri=uri))
    done = []
    for round_ in range(ROUNDS):
        bundle = Path(home).parent / "src" / f"w{worker}-r{round_}"

        def fill(staging: Path, label: str = bundle.name) -> None:
            (staging / "model.txt").write_text(f"model {label}\n")

        manifest = publish_directory(bundle, fill)
        with registry.run(experiment="churn", params={"worker": worker, "round": round_}) as run:
            version = run.register_bundle(bundle, name="churn").version
        started = time.monotonic()
        registry.promote("churn", version, alias="champion")
        promotion = (started, time.monotonic(), version)
        done.append((version, str(manifest["manifest_sha256"]), promotion))
    return done


def _admin(sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"{PG}/postgres", connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_store: Path
) -> Iterator[Settings]:
    home = tmp_path / "home"
    if request.param == "sqlite":
        yield settings_with_store(home, migrated_store)
        return
    name = f"churnscale_r21_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield Settings(home=home, tracking_uri=f"{PG}/{name}")
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_concurrent_register_and_promote(settings: Settings) -> None:
    registry = Registry(settings)
    registry.list_models()  # create (and migrate) the store once, before the writers start
    context = multiprocessing.get_context("spawn")
    reads = 0
    started = time.perf_counter()
    with context.Pool(WORKERS) as pool:
        args = [(str(settings.home), settings.tracking_uri, w) for w in range(WORKERS)]
        pending = pool.starmap_async(_register_and_promote, args)
        seen: set[int] = set()
        while not pending.ready():
            try:
                champion = registry.resolve("churn@champion")
            except ModelNotFoundError:
                time.sleep(0.05)  # nothing promoted yet
                continue
            verify_directory(champion)
            seen.add(int(champion.name))
            reads += 1
        per_worker = pending.get(timeout=600)
    elapsed = time.perf_counter() - started
    done = [entry for worker in per_worker for entry in worker]
    versions = sorted(v for v, _, _ in done)
    total = WORKERS * ROUNDS
    assert versions == list(range(1, total + 1))
    registered = {v.version: v for v in registry.list_models()}
    assert sorted(registered) == versions
    assert {v: registered[v].manifest_sha256 for v, _, _ in done} == {v: s for v, s, _ in done}
    assert seen <= set(versions)
    last = max((p for _, _, p in done), key=lambda p: p[1])
    overlapping = {p[2] for _, _, p in done if p[1] >= last[0]}
    champion = int(registry.resolve("churn@champion").name)
    assert champion in overlapping
    assert registry.show("churn", champion).aliases == ("champion",)
    print(
        f"R21 {registry.uri.split(':')[0]}: {total} versions by {WORKERS} processes in "
        f"{elapsed:.0f} s; {reads} alias reads all verified; final alias {champion} "
        f"(last promotion {last[2]}, overlapping {sorted(overlapping)})"
    )
