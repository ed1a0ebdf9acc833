"""``churnscale models``: list, show and promote registered model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from churnscale.registry import ModelVersion, Registry

models = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)
_COLUMNS = (
    "name",
    "version",
    "aliases",
    "created",
    "parent",
    "manifest sha256",
    "run",
    "description",
)


def _registry() -> Registry:
    from churnscale.config import load_settings
    from churnscale.registry import Registry

    return Registry(load_settings())


def _row(version: ModelVersion) -> tuple[str, ...]:
    return (
        version.name,
        str(version.version),
        ", ".join(version.aliases),
        version.created,
        version.parent or "",
        version.manifest_sha256[:12],
        version.run_id[:12],
        version.description,
    )


def _table(title: str, versions: list[ModelVersion]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for name in _COLUMNS:
        table.add_column(name, justify="right" if name == "version" else "left")
    for version in versions:
        table.add_row(*_row(version))
    return table


@models.command("list")
def list_models() -> None:
    """Every version of every registered model."""
    from churnscale.terminal import stderr_console, stdout_console

    registry = _registry()
    versions = registry.list_models()
    if not versions:
        stderr_console().print(f"no registered models in {registry.uri}")
        return
    stdout_console().print(_table(f"registered models — {registry.uri}", versions))


@models.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Argument(help="Version (default: latest).")] = None,
) -> None:
    """One version of a model, with its lineage and checksum."""
    from rich.table import Table

    from churnscale.terminal import stdout_console

    found = _registry().show(name, version)
    table = Table(title=found.reference, show_header=False)
    full = {"manifest sha256": found.manifest_sha256, "run": found.run_id}
    for key, value in zip(_COLUMNS, _row(found), strict=True):
        table.add_row(key, full.get(key, value))
    table.add_row("data fingerprint", found.data_fingerprint or "")
    stdout_console().print(table)


@models.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version to promote.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to point at it.")] = "champion",
) -> None:
    """Point NAME@ALIAS at VERSION after verifying the version's bundle checksum."""
    from churnscale.terminal import stderr_console

    _registry().promote(name, version, alias=alias)
    stderr_console().print(f"{name}@{alias} -> {name}/{version}")


def register(app: typer.Typer) -> None:
    """Attach ``churnscale models``."""
    app.add_typer(models, name="models")
