"""R10: with the registry unreachable, resolve serves the verified cached copy and says so."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from churnscale.config import Settings
from churnscale.exceptions import RegistryUnavailableError
from churnscale.registry import Registry
from conftest import BundleMaker, same_files


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def offline(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A second Registry on the same home whose server is a closed port (no retries)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = settings.model_copy(update={"tracking_uri": f"http://127.0.0.1:{_closed_port()}"})
    return Registry(down)


def test_cached_alias_and_version_survive_an_outage(
    registry: Registry,
    offline: Registry,
    make_bundle: BundleMaker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundles: list[Path] = []
    for label in ("a", "b"):
        bundles.append(make_bundle(label))
        with registry.run(experiment="churn") as run:
            run.register_bundle(bundles[-1], name="churn")
    registry.promote("churn", 1, alias="champion")
    online = registry.resolve("churn@champion")
    with caplog.at_level(logging.WARNING, logger="churnscale.registry"):
        assert offline.resolve("churn@champion") == online
    assert (
        "unreachable; using cached bundle churn/1 (churn@champion as last resolved" in caplog.text
    )
    assert same_files(offline.resolve("churn/1"), bundles[0])
    with pytest.raises(RegistryUnavailableError, match="no verified cached copy of churn/2"):
        offline.resolve("churn/2")
    with pytest.raises(RegistryUnavailableError, match="no cached mapping for churn@challenger"):
        offline.resolve("churn@challenger")
    with pytest.raises(RegistryUnavailableError, match="is unreachable: get model version failed"):
        offline.promote("churn", 2, alias="champion")
    (online / "model.txt").write_text("tampered while offline")
    with pytest.raises(RegistryUnavailableError, match="no verified cached copy of churn/1"):
        offline.resolve("churn@champion")


def test_writes_fail_with_one_clear_error_when_down(
    offline: Registry, make_bundle: BundleMaker
) -> None:
    with pytest.raises(RegistryUnavailableError, match=r"127\.0\.0\.1.* is unreachable"):
        with offline.run(experiment="churn"):
            pass
    with pytest.raises(RegistryUnavailableError, match="is unreachable: search failed"):
        offline.list_models()
