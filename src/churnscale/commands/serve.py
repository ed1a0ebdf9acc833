"""``churnscale serve``: the prediction service under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from churnscale.exceptions import ConfigError


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the CLI."""

    @app.command()
    def serve(
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Bundle path or churn@champion, churn/3 (default: CHURNSCALE_MODEL).",
            ),
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
        workers: Annotated[int, typer.Option("--workers", min=1, help="Processes.")] = 1,
        grpc_port: Annotated[
            int | None,
            typer.Option(
                "--grpc-port",
                min=1,
                max=65535,
                help="Also serve the Open Inference Protocol over gRPC on this port "
                "(needs the grpc extra).",
            ),
        ] = None,
        reasons: Annotated[
            bool | None, typer.Option("--reasons/--no-reasons", help="Reason codes by default.")
        ] = None,
    ) -> None:
        """Serve predictions over HTTP (REST, Open Inference Protocol v2, SageMaker, MLflow),
        and the Open Inference Protocol over gRPC with --grpc-port."""
        from churnscale.config import load_settings
        from churnscale.extras import require
        from churnscale.model.loading import resolve_bundle
        from churnscale.serving.deployment import routing_from_settings
        from churnscale.serving.server import serve as run_server

        overrides: dict[str, object] = {}
        if model is not None:
            overrides["model"] = model
        if reasons is not None:
            overrides["reasons"] = reasons
        settings = load_settings(**overrides)
        if settings.model is None and settings.routing is None:
            raise ConfigError(
                "--model", expected="a bundle path or registry reference", received=None
            )
        routing = routing_from_settings(settings)
        for reference in [*(arm.model for arm in routing.arms), routing.shadow]:
            if reference is not None:  # fail fast, with one line, on a bad reference
                resolve_bundle(reference, settings)
        if grpc_port is not None:
            require("grpc", feature="serve --grpc-port")
        run_server(settings, host=host, port=port, workers=workers, grpc_port=grpc_port)
