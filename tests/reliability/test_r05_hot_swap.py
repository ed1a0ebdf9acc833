"""R05 (hot swap under load): 20 swaps between two bundles through ``POST /admin/reload`` while
six client threads keep sending predictions to a real uvicorn server: no failed or dropped
request, and every response's ``X-Model-Version`` is one of the two versions (and agrees with
the body). The server uses LightGBM's own predictor, so each reload is a real load and warm
without the lleaves compile time (see the ``guarded`` fixture)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
import pytest
from reliability_server import ADMIN_KEY, PREDICT_KEY, Bundles, Server, bearer

pytestmark = pytest.mark.integration


def load(url: str, customers: list[dict[str, Any]], stop: threading.Event, seen: list[Any]) -> None:
    """Send predictions until ``stop``; record (status, header version, body version)."""
    with httpx.Client(base_url=url, headers=bearer(PREDICT_KEY), timeout=30) as client:
        i = 0
        while not stop.is_set():
            try:
                answer = client.post("/v1/predict", json=customers[i % len(customers)])
                body = answer.json()
                seen.append((answer.status_code, answer.headers.get("x-model-version"), body))
            except Exception as exc:  # a dropped request is a failure: record it
                seen.append(("error", repr(exc), None))
            i += 1


def test_twenty_swaps_under_load_drop_nothing(
    guarded: Server, bundles: Bundles, customers: list[dict[str, Any]]
) -> None:
    stop = threading.Event()
    seen: list[Any] = []
    threads = [
        threading.Thread(target=load, args=(guarded.url, customers[k::6], stop, seen))
        for k in range(6)
    ]
    for thread in threads:
        thread.start()
    reports = []
    try:
        with httpx.Client(base_url=guarded.url, headers=bearer(ADMIN_KEY), timeout=120) as admin:
            for swap in range(20):
                name = "b" if swap % 2 == 0 else "a"
                answer = admin.post("/admin/reload", json={"bundle": name})
                assert answer.status_code == 200, answer.text
                reports.append(answer.json())
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert [r["status"] for r in reports] == ["swapped"] * 20
    assert reports[0]["changed"]["default"] == {"from": bundles.version_a, "to": bundles.version_b}
    assert reports[-1]["serving"]["default"]["version"] == bundles.version_a
    statuses = Counter(status for status, _, _ in seen)
    seconds = [r["seconds"] for r in reports]
    print(f"20 swaps ({min(seconds)}-{max(seconds)} s each), {len(seen)} requests: {statuses}")
    assert statuses == {200: len(seen)}, statuses.most_common(3)
    versions = Counter(version for _, version, _ in seen)
    assert set(versions) == {bundles.version_a, bundles.version_b}
    assert all(header == body["model_version"] for _, header, body in seen)
    assert len(seen) > 100
