"""Issue 24: the installed console script answers usage errors with one line and exit 2.

Every command and subcommand of the real ``churnscale`` script (the venv's, beside
``sys.executable``) is run as a subprocess with ``--help`` (exit 0), with an unknown option and,
where it has a required parameter, with none given (exit 2, no traceback, the message naming
the option or argument). The commands are listed from the app itself, so a new command is
checked without touching this file. The runs go through a small thread pool.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from churnscale import __version__
from churnscale.cli import app

SCRIPT = Path(sys.executable).with_name("churnscale")


@dataclass(frozen=True)
class Ran:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def churnscale(*args: str) -> Ran:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNSCALE_")}
    done = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    return Ran(args, done.returncode, done.stdout, done.stderr)


def run_all(cases: list[tuple[str, ...]]) -> list[Ran]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda args: churnscale(*args), cases))


def commands() -> dict[tuple[str, ...], list[str]]:
    """Every command path (groups included) → the names of its required parameters, as a
    user types them (``--out`` for an option, ``data`` for an argument)."""
    found: dict[tuple[str, ...], list[str]] = {}

    def walk(command: object, path: tuple[str, ...]) -> None:
        required = [
            p.opts[0] if getattr(p, "param_type_name", "") == "option" else str(p.name)
            for p in getattr(command, "params", [])
            if p.required
        ]
        found[path] = required
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, ...], Ran]:
    """One run per case: --help, an unknown option, no arguments, for every command."""
    cases: list[tuple[str, ...]] = [("--version",), ("trian",), ("models", "lsit")]
    for path in commands():
        cases += [(*path, "--help"), (*path, "--no-such-flag", "1"), path]
    return {ran.args: ran for ran in run_all(cases)}


def test_the_script_is_the_venvs() -> None:
    assert SCRIPT.is_file(), f"no console script beside {sys.executable}"


def test_every_command_has_help(outcomes: dict[tuple[str, ...], Ran]) -> None:
    for path in commands():
        ran = outcomes[(*path, "--help")]
        assert ran.code == 0 and "Usage" in ran.out, ran
        assert "Traceback" not in ran.text, ran


def test_unknown_options_are_one_line_and_exit_2(outcomes: dict[tuple[str, ...], Ran]) -> None:
    for path in commands():
        ran = outcomes[(*path, "--no-such-flag", "1")]
        assert ran.code == 2, ran
        assert "Traceback" not in ran.text, ran
        assert ran.out == "" and len(ran.err.strip().splitlines()) == 1, ran
        assert ran.err.startswith("error: No such option: --no-such-flag"), ran


def test_missing_arguments_are_named_and_exit_2(outcomes: dict[tuple[str, ...], Ran]) -> None:
    checked = 0
    for path, required in commands().items():
        if not required:
            continue
        ran = outcomes[path]
        assert ran.code == 2, ran
        assert "Traceback" not in ran.text and len(ran.err.strip().splitlines()) == 1, ran
        assert ran.err.startswith("error: Missing "), ran
        named = ran.err.lower()  # click writes an argument as 'DATA', typer 0.29 as 'data'
        assert any(f"'{name.lower()}'" in named for name in required), (required, ran)
        checked += 1
    assert checked >= 14  # every command that takes a required argument or option


def test_groups_without_a_command_print_help_and_exit_0(
    outcomes: dict[tuple[str, ...], Ran],
) -> None:
    for path in [(), ("models",), ("features",)]:
        ran = outcomes[path]
        assert ran.code == 0 and "Usage" in ran.out and "Commands" in ran.out, ran
        assert "Traceback" not in ran.text, ran


def test_unknown_commands_and_version(outcomes: dict[tuple[str, ...], Ran]) -> None:
    version = outcomes[("--version",)]
    assert (version.code, version.out.strip()) == (0, f"churnscale {__version__}")
    for args, name in [(("trian",), "'trian'"), (("models", "lsit"), "'lsit'")]:
        ran = outcomes[args]
        assert ran.code == 2 and "Traceback" not in ran.text, ran
        assert ran.err.startswith(f"error: No such command {name}"), ran
        assert len(ran.err.strip().splitlines()) == 1, ran


def test_the_cli_imports_nothing_heavy() -> None:
    """``--help`` and usage errors answer at once: importing the app loads no data, model or
    settings library (commands import them when they run)."""
    heavy = ("pyarrow", "numpy", "pandas", "pydantic_settings", "mlflow", "lightgbm", "dask")
    code = f"import sys, churnscale.cli; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
