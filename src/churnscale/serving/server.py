"""Run the service under uvicorn: one process, or N processes each with its own listening socket.

The port opens at once and the model loads behind it (``/healthz`` 200, ``/readyz`` 503 until
warm). On SIGTERM uvicorn stops accepting, lets in-flight requests finish for up to
``CHURNSCALE_DRAIN_TIMEOUT_S`` and exits.

With ``workers > 1`` every process binds its own socket to the same address with
``SO_REUSEPORT``, so the kernel spreads connections over the processes; measured here this
balanced keep-alive connections better than ``uvicorn --workers`` (one shared socket), which
sometimes left every connection on one worker.

With ``grpc_port`` each process also serves the Open Inference Protocol's gRPC service
(:mod:`churnscale.serving.grpc_server`) on that port, in the same event loop; it stops after
HTTP has drained.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import signal
import socket
from types import FrameType

from churnscale.config import Settings
from churnscale.exceptions import ConfigError


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with ``SO_REUSEPORT`` set."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            "--port", expected="a free port", received=f"{host}:{port} ({exc})"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_one(
    settings: Settings,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    grpc_port: int | None = None,
) -> None:
    """Serve in this process until SIGINT/SIGTERM (and gRPC on ``grpc_port`` when given)."""
    import uvicorn

    from churnscale.config import remember_secrets
    from churnscale.redaction import install_log_redaction

    install_log_redaction()  # a spawned worker starts without the CLI's set-up
    remember_secrets(settings)

    from churnscale.serving.app import create_app
    from churnscale.serving.fastpath import fast_path_protocol

    app = create_app(settings, background_load=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=fast_path_protocol(app, settings),  # timeouts; the hot route if fast_path
        limit_concurrency=settings.max_connections,  # 503 beyond it
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]  # float works
        proxy_headers=False,  # the service reads no client address; skip the per-request rewrite
        timeout_graceful_shutdown=math.ceil(
            settings.drain_timeout_s
        ),  # SIGTERM: in-flight requests finish
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    app.state.on_failure = stop  # the first model load failed: exit instead of never ready
    sockets = [reuseport_socket(host, port)] if reuse_port else None

    async def run() -> None:
        grpc = None
        if grpc_port is not None:
            from churnscale.serving.grpc_server import start_grpc

            grpc = await start_grpc(
                app, host=host, port=grpc_port, max_bytes=settings.max_body_bytes
            )
        try:
            await server.serve(sockets=sockets)
        finally:
            if grpc is not None:
                await grpc.stop(grace=1.0)  # HTTP has drained: finish the calls in flight

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(run())
    if not server.started or app.state.failure is not None:
        raise SystemExit(3)


def serve(
    settings: Settings, *, host: str, port: int, workers: int, grpc_port: int | None = None
) -> None:
    """Serve with ``workers`` processes (one ``SO_REUSEPORT`` socket each when > 1; gRPC's
    server sets ``SO_REUSEPORT`` itself, so every process serves ``grpc_port`` too)."""
    if workers < 1:
        raise ConfigError("--workers", expected="at least 1", received=workers)
    if workers == 1:
        serve_one(settings, host, port, grpc_port=grpc_port)
        return
    context = multiprocessing.get_context("spawn")
    options = {"reuse_port": True, "grpc_port": grpc_port}
    children = [
        context.Process(target=serve_one, args=(settings, host, port), kwargs=options)
        for _ in range(workers)
    ]
    for child in children:
        child.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
