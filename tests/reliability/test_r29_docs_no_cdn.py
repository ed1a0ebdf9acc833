"""R29 (docs without a CDN): ``/docs`` and ``/redoc`` of a live server reference no other host
(FastAPI's pages load Swagger UI and ReDoc from cdn.jsdelivr.net, a favicon from
fastapi.tiangolo.com, fonts from fonts.googleapis.com) and carry a Content-Security-Policy
that forbids any; with ``CHURNSCALE_DOCS_ASSETS`` Swagger UI's two files come from the service.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from reliability_server import PREDICT_KEY, Bundles, Server, bearer

from churnscale.config import Settings
from churnscale.serving.app import create_app

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
#: Any reference to another host: an absolute or protocol-relative URL, in markup or CSS.
EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|@import""")


def _links(html: str) -> list[str]:
    """Every src/href/url() target of a page."""
    found: list[str] = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']|url\(([^)]*)\)""", html)
    return found


def test_docs_pages_reference_no_other_host(guarded: Server) -> None:
    with httpx.Client(base_url=guarded.url, headers=bearer(PREDICT_KEY), timeout=30) as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            assert EXTERNAL.search(page.text) is None, (path, EXTERNAL.search(page.text))
            assert "<script" not in page.text
            policy = page.headers["content-security-policy"]
            assert policy.startswith("default-src 'none'")
            assert "POST /v1/predict" in page.text and "/v1/feedback" in page.text
            links = [t for pair in _links(page.text) for t in pair if t]
            print(f"R29: {path}: {len(page.text):,} bytes, links {links}, CSP {policy!r}")
            assert links == ["/openapi.json"]


def test_swagger_ui_from_the_configured_assets(bundle_a: Path, tmp_path: Path) -> None:
    (tmp_path / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = function () {};")
    (tmp_path / "swagger-ui.css").write_text("body { margin: 0 }")
    settings = Settings(model=str(bundle_a), docs_assets=tmp_path, home=tmp_path / "home")
    with TestClient(create_app(settings)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert EXTERNAL.search(page.text) is None, EXTERNAL.search(page.text)
        assert "/docs/assets/swagger-ui-bundle.js" in page.text
        assert "/docs/assets/swagger-ui.css" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.text.startswith("window.SwaggerUIBundle")
        assert script.headers["content-type"].startswith("text/javascript")
        for name in ("other.js", "..%2fswagger-ui.css", "%2e%2e"):
            assert client.get(f"/docs/assets/{name}").status_code == 404, name


@pytest.fixture
def bundle_a(bundles: Bundles) -> Path:
    return bundles.root / "a"
