"""The ``churnscale`` command line: thin wiring from flags to the library.

Exit codes: 0 success (``--help``, ``--version``, a group named without a command: its help);
1 an unexpected failure (one line; ``CHURNSCALE_DEBUG=1`` re-raises it with its traceback);
2 bad input: a :class:`ChurnscaleError`, an ``OSError`` on a path (missing, unreadable, too
long) or a usage error (unknown command or option, missing or invalid argument), one line on
stderr. Nothing a user types produces a traceback.

Usage errors are recognised whatever the installed typer does with click: typer 0.29 vendors it
as ``typer._click`` (exceptions that are not ``click.ClickException``), older typers raise
click's own; both are caught. Importing this module stays light (no pyarrow, pydantic or
MLflow), so ``--help`` and usage errors answer at once; commands import what they need.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Any

import typer

from churnscale.exceptions import ChurnscaleError
from churnscale.version import __version__

app = typer.Typer(
    name="churnscale",
    help="Customer churn prediction at any scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"churnscale {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Customer churn prediction at any scale."""


def _register_commands() -> None:
    """Attach the command groups that live in ``churnscale.commands``; one line per area."""
    from churnscale.commands import (
        backtest,
        data,
        drift,
        evaluate,
        experiment,
        export,
        features,
        learn,
        models,
        retrain,
        score,
        serve,
        target,
        train,
        tune,
    )

    for area in (data, backtest, export, models, drift, retrain, features, learn, score):
        area.register(app)
    for area in (serve, train, evaluate, tune, target, experiment):
        area.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point: run the app; every failure ends in one line and 1 or 2."""
    from churnscale.redaction import install_log_redaction, remember_uris_in

    install_log_redaction()
    remember_uris_in(sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except ChurnscaleError as exc:
        _fail(str(exc), 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("aborted", 130)
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:  # a path the user gave: missing, unreadable, too long, a directory
        _fail(_os_message(exc), 2)
    except Exception as exc:
        if _is_click_exception(exc):
            _usage_failure(exc)
        if os.environ.get("CHURNSCALE_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (CHURNSCALE_DEBUG=1 shows where)", 1)
    if isinstance(code, int) and code:
        sys.exit(code)


def _fail(message: str, code: int) -> None:
    from churnscale.redaction import redact
    from churnscale.terminal import stderr_console

    text = " ".join(redact(message).split()) or "unknown error"
    stderr_console().print(f"error: {text}" if code != 130 else text, style="red")
    sys.exit(code)


def _os_message(exc: OSError) -> str:
    if exc.filename is None or exc.strerror is None:
        return str(exc)
    name = str(exc.filename)
    shown = name if len(name) <= 200 else f"{name[:197]}..."
    return f"{shown}: {exc.strerror}"


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """``ClickException`` of typer's vendored click and of click itself, where importable."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _is_click_exception(exc: BaseException) -> bool:
    return isinstance(exc, _click_exception_types())


def _usage_failure(exc: Any) -> None:
    """A click usage error as one line (message, usage, where to get help); a group named
    without a command shows its help and exits 0."""
    if type(exc).__name__ == "NoArgsIsHelpError" or any(
        c.__name__ == "NoArgsIsHelpError" for c in type(exc).__mro__
    ):
        help_text = exc.format_message()  # typer with rich has printed it already
        if help_text.strip():
            typer.echo(help_text)
        sys.exit(0)
    message = " ".join(str(exc.format_message()).split())
    context = getattr(exc, "ctx", None)
    if context is not None:
        usage = " ".join(str(context.get_usage()).split())
        message = f"{message} ({usage}; '{context.command_path} --help' for more)"
    _fail(message, int(getattr(exc, "exit_code", 2)))


__all__ = ["app", "main"]
