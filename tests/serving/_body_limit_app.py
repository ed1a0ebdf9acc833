"""A tiny Starlette app behind BodyLimitMiddleware, served by uvicorn (run by the tests)."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from churnscale.serving.limits import BodyLimitMiddleware

calls = {"upload": 0}


async def upload(request: Request) -> JSONResponse:
    calls["upload"] += 1
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"bytes": size})


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(calls)


app = Starlette(routes=[Route("/upload", upload, methods=["POST"]), Route("/stats", stats)])

if __name__ == "__main__":
    port, max_bytes, http = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    limited = BodyLimitMiddleware(app, max_bytes, max_header_bytes=8_192)
    uvicorn.run(limited, host="127.0.0.1", port=port, http=http, log_level="warning")
