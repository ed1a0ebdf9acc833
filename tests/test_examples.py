"""Every example runs: the docstring examples (doctests) of every module that has one, and the
``python`` blocks of README.md, each in a fresh working directory and churnscale home."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _modules_with_examples() -> list[str]:
    found = []
    for path in sorted((SRC / "churnscale").rglob("*.py")):
        if ">>> " in path.read_text():
            parts = list(path.relative_to(SRC).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append(".".join(parts))
    return found


def _readme_blocks() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text()
    return [
        (text[: m.start()].count("\n") + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    ]


MODULES = _modules_with_examples()
BLOCKS = _readme_blocks()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and churnscale home (``home`` in the examples)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    return tmp_path


def test_the_examples_are_found() -> None:
    assert {"churnscale", "churnscale.api.training", "churnscale.sklearn"} <= set(MODULES)
    assert any("churnscale.train(" in block for _, block in BLOCKS)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str, workdir: Path) -> None:
    tests = doctest.DocTestFinder().find(
        importlib.import_module(module), extraglobs={"home": workdir}
    )
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)
    assert runner.summarize(verbose=False).attempted > 0


@pytest.mark.parametrize(("line", "block"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_python_blocks(line: int, block: str, workdir: Path) -> None:
    exec(compile(block, f"README.md:{line}", "exec"), {"__name__": "readme"})
