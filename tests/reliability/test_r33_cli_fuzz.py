"""R33 (issue 15 item 7): the CLI prints user data as text and never ends in a traceback.

Pass figure: a seeded fuzz of every command and subcommand (listed from the app) with hostile
values (rich markup, escape codes, bidirectional overrides, emoji codes, huge, negative and
non-finite numbers, traversal paths, empty strings) and hostile ``CHURNSCALE_*`` settings
(out of range, not a number, not JSON, markup) ends every run with exit 0, 1 or 2, no
"Traceback" and no raw control character in any output, and one ``error:`` line when it fails;
a dataset whose column names and categories are ``[/bold]``, ``[red]x[/red]``, an escape code
and ``:smile:`` is ingested and profiled with every name shown literally. The runs go through
the console script's entry point in process (``churnscale.cli.main``). On 866115b ``profile``
crashes with a ``MarkupError``, ``churnscale models`` ends in ``NoArgsIsHelpError`` and
``CHURNSCALE_MAX_QUEUE=-5`` gives a 14-frame traceback.
"""

from __future__ import annotations

import csv
import doctest
import os
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

import churnscale.terminal
from churnscale.cli import app, main

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("R33_SEED", "33"))
ROUNDS = 3  # runs per command with hostile values (settings: one more)
HOSTILE_TEXT = [
    "[/bold]", "[red]x[/red]", "\x1b]0;pwned\x07", "\x1b[2J\x1b[31mred", "\u202egnp.exe",
    ":smile:", "", " ", "%s%n{0}", "{x}", "../../../../etc/passwd", "s3://", "redis://",
    "tls://nowhere", "local:0", "churn@[/b]", "a" * 3_000, "ünï\u0000code",
]  # fmt: skip
HOSTILE_NUMBERS = ["-1", "0", "1e309", "nan", "-inf", "99999999999999999999", "0x10", "[/b]"]
HOSTILE_SETTINGS = {
    "CHURNSCALE_MAX_QUEUE": "-5",
    "CHURNSCALE_BATCH_ROWS": "abc",
    "CHURNSCALE_CORS_ORIGINS": "[not json",
    "CHURNSCALE_PREDICTOR": "[/bold]",
    "CHURNSCALE_MODEL_NAME": "\x1b[31mred",
    "CHURNSCALE_REQUEST_TIMEOUT_S": "-1",
    "CHURNSCALE_DRIFT_P_VALUE": "2",
    "CHURNSCALE_ONLINE_CHECKPOINT_KEY": "short",
    "CHURNSCALE_TRACKING_URI": "[red]x[/red]",
}
#: Control characters a hostile value may carry; none may reach a terminal raw.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202e]")


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    code: int | str
    out: str
    err: str


def _commands() -> dict[tuple[str, ...], list[Any]]:
    found: dict[tuple[str, ...], list[Any]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", {})
        if not subcommands:
            found[path] = list(command.params)
        for name, sub in sorted(subcommands.items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _value(param: Any, rng: random.Random) -> str:
    described = f"{getattr(param, 'type', '')!r} {getattr(param, 'type_descriptor', '')!r}"
    numeric = re.search(r"\b(int|float|integer)\b", described, re.IGNORECASE) is not None
    return rng.choice(HOSTILE_NUMBERS if numeric else HOSTILE_TEXT)


def _args(path: tuple[str, ...], params: list[Any], rng: random.Random) -> list[str]:
    """Every required parameter with a hostile value, plus one optional option at random."""
    args = list(path)
    options = [p for p in params if p.param_type_name == "option" and not p.is_flag]
    for param in params:
        if not param.required:
            continue
        if param.param_type_name == "argument":
            args.append(_value(param, rng))
        else:
            args += [param.opts[0], _value(param, rng)]
    if options:
        extra = rng.choice(options)
        args += [extra.opts[0], _value(extra, rng)]
    if "--stream" in args:  # '-' would read the test's stdin; every other value is fair
        args[args.index("--stream") + 1] = rng.choice(HOSTILE_TEXT[:6])
    return args


def _run(
    args: list[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> Run:
    with monkeypatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setattr(sys, "argv", ["churnscale", *args])
        code: int | str = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int | str) else 0
        except BaseException as exc:  # a traceback in a real shell
            code = f"raised {type(exc).__name__}: {exc}"
    out, err = capfd.readouterr()
    return Run(tuple(args), tuple(env.items()), code, out, err)


def _problems(run: Run) -> list[str]:
    problems = []
    if run.code not in (0, 1, 2):
        problems.append(f"exit {run.code!r}")
    text = run.out + run.err
    if "Traceback" in text:
        problems.append("a traceback")
    if RAW_CONTROL.search(text):
        problems.append("a raw control character")
    lines = [line for line in run.err.splitlines() if line.strip()]
    if run.code in (1, 2):
        errors = [line for line in lines if line.startswith("error:")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            problems.append(f"{len(errors)} error lines, last {lines[-1:]!r}")
    return problems


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for key in list(os.environ):
        if key.startswith("CHURNSCALE_") and key != "CHURNSCALE_HOME":
            monkeypatch.delenv(key)
    return tmp_path


def test_every_command_with_hostile_values_and_settings(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    runs = []
    for path, params in _commands().items():
        if path == ("serve",):  # a valid value would serve forever: --model is always bad
            params = [p for p in params if p.name != "model"]
        for _ in range(ROUNDS):
            args = _args(path, params, rng)
            if path == ("serve",):
                args += ["--model", rng.choice(HOSTILE_TEXT)]
            runs.append(_run(args, {}, monkeypatch, capfd))
        name, value = rng.choice(sorted(HOSTILE_SETTINGS.items()))
        args = _args(path, params, rng) + (["--model", "x"] if path == ("serve",) else [])
        runs.append(_run(args, {name: value}, monkeypatch, capfd))
    for name, value in HOSTILE_SETTINGS.items():  # each setting once where settings are read
        runs.append(_run(["models", "list"], {name: value}, monkeypatch, capfd))
    failures = [(run.args, run.env, problems) for run in runs if (problems := _problems(run))]
    codes = Counter(str(run.code) for run in runs)
    print(f"R33: seed {SEED}: {len(runs)} runs over {len(_commands())} commands; exit codes "
          f"{dict(sorted(codes.items()))}; {len(failures)} with a problem")  # fmt: skip
    unexpected = [(run.args[:2], run.err[:200]) for run in runs if run.code == 1]
    print(f"R33: exit 1 (unexpected failures): {unexpected}")
    assert not failures, failures[:5]
    settings_runs = runs[-len(HOSTILE_SETTINGS) :]
    for run, (name, _) in zip(settings_runs, HOSTILE_SETTINGS.items(), strict=True):
        if name != "CHURNSCALE_TRACKING_URI":  # a URI is not validated; MLflow refuses it
            assert run.code == 2 and run.err.startswith(f"error: {name}: expected"), run


def test_hostile_column_names_and_categories_print_literally(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    names = ["customer_id", "[/bold]", "[red]x[/red]", "\x1b[31mesc", ":smile:", "churned"]
    rng = random.Random(SEED)
    with (sandbox / "hostile.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for i in range(400):
            category = rng.choice(["[/bold]", "[red]v[/red]", "\x1b]0;pwn\x07", ":smile:"])
            writer.writerow([f"C{i}", category, rng.random(), rng.randint(0, 5), "x", i % 2])
    ingest = _run(["ingest", "hostile.csv", "--out", "ds", "--target", "churned"],
                  {}, monkeypatch, capfd)  # fmt: skip
    assert ingest.code == 0 and not _problems(ingest), ingest
    shown = _run(["profile", "ds"], {}, monkeypatch, capfd)
    assert shown.code == 0 and not _problems(shown), shown
    for literal in ("[/bold]", "[red]x[/red]", "\\x1b[31mesc", ":smile:", "\\x1b]0;pwn\\x07"):
        assert literal in shown.out, (literal, shown.out)


def test_commands_share_one_settings_helper_and_one_console() -> None:
    """Issue 16 item 7: no command builds ``Settings()`` or a rich ``Console`` itself."""
    root = Path(churnscale.terminal.__file__).parent
    sources = [root / "cli.py", *sorted((root / "commands").glob("*.py"))]
    for source in sources:
        assert not re.search(r"\bSettings\(", source.read_text()), f"{source.name}: Settings()"
    consoles = [p for p in root.rglob("*.py") if re.search(r"\bConsole\(", p.read_text())]
    assert consoles == []  # every console is a terminal.PlainConsole


def test_terminal_examples_run() -> None:
    result = doctest.testmod(churnscale.terminal)
    assert result.attempted > 0 and result.failed == 0
