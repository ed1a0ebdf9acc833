"""Four processes registering and promoting at once against one SQLite store."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.config import Settings
from churnscale.exceptions import ModelNotFoundError
from churnscale.registry import Registry

WORKERS = 4
ROUNDS = 10


def _register_and_promote(home: str, worker: int) -> list[int]:
    registry = Registry(Settings(home=Path(home), tracking_uri=None))
    versions: list[int] = []
    for round_ in range(ROUNDS):
        bundle = Path(home).parent / "src" / f"w{worker}-r{round_}"

        def fill(staging: Path, label: str = bundle.name) -> None:
            (staging / "model.txt").write_text(f"model {label}\n")

        publish_directory(bundle, fill)
        with registry.run(experiment="churn", params={"worker": worker}) as run:
            version = run.register_bundle(bundle, name="churn").version
        registry.promote("churn", version, alias="champion")
        versions.append(version)
    return versions


@pytest.mark.slow
def test_concurrent_register_and_promote(settings: Settings) -> None:
    registry = Registry(settings)
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        pending = pool.starmap_async(
            _register_and_promote, [(str(settings.home), w) for w in range(WORKERS)]
        )
        seen: set[int] = set()
        while not pending.ready():
            try:
                champion = registry.resolve("churn@champion")
            except ModelNotFoundError:
                time.sleep(0.05)  # nothing promoted yet
                continue
            verify_directory(champion)
            seen.add(int(champion.name))
        per_worker = pending.get(timeout=120)
    versions = [v for worker in per_worker for v in worker]
    assert sorted(versions) == list(range(1, WORKERS * ROUNDS + 1))
    registered = registry.list_models()
    assert [v.version for v in registered] == list(range(1, WORKERS * ROUNDS + 1))
    assert seen <= set(versions)
    champion = registry.show("churn", int(registry.resolve("churn@champion").name))
    assert champion.aliases == ("champion",)
    assert {registry.show("churn", v).manifest_sha256 for v in versions} == {
        v.manifest_sha256 for v in registered
    }


def test_alias_insert_race_is_retried_but_other_conflicts_are_not() -> None:
    """MLflow sets an alias by check-then-insert: two first writers collide on the unique key.
    The exception is raised by hand here because the race cannot be provoked on demand."""
    from churnscale.registry import backend

    race = RuntimeError("UNIQUE constraint failed: registered_model_aliases.name")
    calls: list[int] = []

    def lose_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise race
        return "set"

    assert backend.call("sqlite:///x", "set alias", lose_once, idempotent=True) == "set"
    assert len(calls) == 2

    calls.clear()
    with pytest.raises(RuntimeError, match="UNIQUE"):
        backend.call("sqlite:///x", "create version", lose_once)
    assert len(calls) == 1
