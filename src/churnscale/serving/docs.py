"""The API documentation pages, served by the service itself: nothing loads from another host.

FastAPI's own ``/docs`` and ``/redoc`` pull Swagger UI and ReDoc from a CDN (and a favicon and
fonts from other hosts), so a browser that opens them tells those hosts about the service, and
runs whatever they serve next to the API keys it holds. Here:

- ``/docs`` and ``/redoc`` are one plain HTML page rendered from the OpenAPI document: every
  operation with its parameters, body media types and answers, the schemas as JSON, a link to
  ``/openapi.json``. No script; a ``Content-Security-Policy`` forbids any other host.
- With ``CHURNSCALE_DOCS_ASSETS`` (a directory holding ``swagger-ui-bundle.js`` and
  ``swagger-ui.css``, e.g. from the ``swagger-ui-dist`` npm package) ``/docs`` is Swagger UI
  with those two files served from ``/docs/assets/``; the policy allows this host only.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
#: The page's policy: nothing from anywhere, inline styles of this page only.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
#: Swagger UI's: scripts, styles and the OpenAPI document from this host only.
SWAGGER_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "h2{font-size:1.1rem;border-top:1px solid #ccc;padding-top:1rem}"
    "pre{background:#f6f6f6;padding:.5rem;overflow-x:auto}td,th{padding:.2rem .6rem;"
    "text-align:left;vertical-align:top}"
)


def docs_router(assets: Path | None) -> APIRouter:
    """The ``/docs`` and ``/redoc`` routes (and ``/docs/assets/NAME`` with ``assets``)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs(request: Request) -> Response:
        if assets is None:
            return _page(request)
        html = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="data:,",
        )
        html.headers["content-security-policy"] = SWAGGER_POLICY
        return html

    @router.get("/redoc")
    async def redoc(request: Request) -> Response:
        return _page(request)

    @router.get("/docs/assets/{name}")
    async def asset(name: str) -> Response:
        if assets is None or name not in ASSETS:  # two fixed names: never a path from the client
            return JSONResponse({"detail": "no such documentation asset"}, status_code=404)
        return FileResponse(assets / name, media_type=ASSETS[name])

    return router


def _page(request: Request) -> HTMLResponse:
    document: dict[str, Any] = request.app.openapi()
    response = HTMLResponse(render(document))
    response.headers["content-security-policy"] = PAGE_POLICY
    return response


def render(document: dict[str, Any]) -> str:
    """The OpenAPI ``document`` as one self-contained HTML page (every text escaped)."""
    info = document.get("info", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
        f"<p>{escape(info.get('summary', ''))}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(_operation(method, path, operation))
    schemas = document.get("components", {}).get("schemas", {})
    parts.append("<h2>Schemas</h2>")
    for name, schema in schemas.items():
        parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3>")
        parts.append(f"<pre>{escape(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    out = [f"<h2><code>{escape(method.upper())} {escape(path)}</code></h2>"]
    for key in ("summary", "description"):
        if operation.get(key):
            out.append(f"<p>{escape(str(operation[key]))}</p>")
    parameters = operation.get("parameters", [])
    if parameters:
        rows = "".join(
            f"<tr><td><code>{escape(str(p.get('name')))}</code></td>"
            f"<td>{escape(str(p.get('in')))}</td>"
            f"<td>{escape(str(p.get('description', '')))}</td></tr>"
            for p in parameters
        )
        out.append(f"<table><tr><th>parameter</th><th>in</th><th></th></tr>{rows}</table>")
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        out.append(f"<p>Body: {escape(', '.join(body))}</p>")
    answers = operation.get("responses", {})
    rows = "".join(
        f"<tr><td>{escape(str(code))}</td><td>{escape(str(a.get('description', '')))}</td></tr>"
        for code, a in answers.items()
    )
    out.append(f"<table><tr><th>answer</th><th></th></tr>{rows}</table>")
    return "".join(out)
