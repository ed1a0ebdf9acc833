"""R27 (admin reload lookup): ``{"model": NAME}`` on ``POST /admin/reload`` looks NAME up under
``CHURNSCALE_MODEL_ROOT`` or in the registry, never in the server's working directory.

The server runs in a directory that holds ``./model``, a valid bundle (a copy of ``b``); an
admin reload of ``{"model": "model"}`` must not load it (on 866115b it did). A bare name that
the model root holds (``b``) is loaded from there.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
from reliability_server import ADMIN_KEY, Bundles, Server, bearer, start, stop

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


@pytest.fixture(scope="module")
def in_model_dir(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server serving ``a``, started in a directory whose ``./model`` is bundle ``b``."""
    work = tmp_path_factory.mktemp("r27-cwd")
    shutil.copytree(bundles.root / "b", work / "model")
    env = {
        "CHURNSCALE_HOME": str(work / "home"),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_MODEL_ROOT": str(bundles.root),
        "CHURNSCALE_ADMIN_API_KEYS": ADMIN_KEY,
        "CHURNSCALE_PREDICTOR": "lightgbm",
    }
    server = start(work / "server.log", env, cwd=work)
    yield server
    stop(server)


def _serving(client: httpx.Client) -> str:
    version: str = client.get("/readyz").json()["model_version"]
    return version


def test_a_bare_name_never_loads_the_working_directory(
    in_model_dir: Server, bundles: Bundles
) -> None:
    with httpx.Client(base_url=in_model_dir.url, timeout=120) as client:
        assert _serving(client) == bundles.version_a
        refused = client.post("/admin/reload", json={"model": "model"}, headers=bearer(ADMIN_KEY))
        print(f"R27: reload of ./model answered {refused.status_code}: {refused.text}")
        assert refused.status_code in (404, 503), refused.text
        assert "model" in refused.json()["detail"]
        assert _serving(client) == bundles.version_a  # ./model (bundle b) was not loaded
        by_root = client.post("/admin/reload", json={"model": "b"}, headers=bearer(ADMIN_KEY))
        assert by_root.status_code == 200, by_root.text
        assert by_root.json()["status"] == "swapped"
        assert _serving(client) == bundles.version_b
        again = client.post("/admin/reload", json={}, headers=bearer(ADMIN_KEY))
        assert again.status_code == 200, again.text
        assert _serving(client) == bundles.version_b
