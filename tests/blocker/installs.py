"""Installs made of the distributions a requirement list needs, out of the development venv.

:func:`closure` follows a list of requirements (``pyproject.toml``'s core dependencies, or
``requirements/serve.in``) through the installed distributions' metadata, markers and extras
included. :func:`make_venv` builds a fresh venv (no system site-packages) whose site-packages
holds only those distributions, as symlinks into the development venv's site-packages: what
``pip install`` of that list would lay down, made in a second. :func:`size_bytes` adds up the
sizes their RECORD files list. ``import_blocker`` (beside this file) is installed into it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections import defaultdict
from importlib.metadata import Distribution, PackageNotFoundError, distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = Path(__file__).resolve().parent / "import_blocker.py"
SITE = Path(sysconfig.get_paths()["purelib"])


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def core_requirements() -> list[str]:
    """The core dependencies of ``pyproject.toml``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def extra_requirements(extra: str) -> list[str]:
    """The requirements of one extra of ``pyproject.toml``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][extra])


def file_requirements(path: Path) -> list[str]:
    """Requirement lines of a ``.in`` file (comments, blanks and ``-e``/``-r`` lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def closure(requirements: list[str]) -> dict[str, Distribution]:
    """Every installed distribution ``requirements`` need, by canonical name."""
    found: dict[str, Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name == "churnscale" or (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        try:
            dist = found.get(name) or distribution(req.name)
        except PackageNotFoundError:
            raise RuntimeError(f"{req.name} is not installed in {sys.prefix}") from None
        found[name] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            extras = ["", *sorted(req.extras)]
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return found


def _files(dist: Distribution) -> list[tuple[str, ...]]:
    """The paths ``dist`` installed into site-packages, as parts (scripts outside it skipped)."""
    parts = [Path(str(f)).parts for f in dist.files or []]
    return [p for p in parts if p and p[0] != ".."]


def size_bytes(dists: dict[str, Distribution]) -> int:
    """Bytes the distributions' files take in site-packages (RECORD sizes; stat where absent)."""
    total = 0
    for dist in dists.values():
        for f in dist.files or []:
            if str(f).startswith(".."):
                continue
            if f.size is not None:
                total += f.size
            else:
                path = Path(str(dist.locate_file(f)))
                total += path.stat().st_size if path.is_file() else 0
    return total


@functools.cache
def _owners() -> dict[tuple[str, ...], set[str]]:
    """For every directory prefix in site-packages, the distributions that own files under it."""
    owners: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for dist in distributions():
        name = canonical(dist.metadata["Name"])
        for parts in _files(dist):
            for depth in range(1, len(parts) + 1):
                owners[parts[:depth]].add(name)
    return owners


def _link(target: Path, prefix: tuple[str, ...], chosen: set[str], owners: dict) -> None:  # type: ignore[type-arg]
    """Link ``prefix`` into ``target`` whole when only ``chosen`` own it, else its entries."""
    source = SITE.joinpath(*prefix)
    if not source.exists() and not source.is_symlink():
        return
    if owners[prefix] <= chosen or source.is_file():
        destination = target.joinpath(*prefix)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not destination.exists():
            destination.symlink_to(source)
        return
    children = {
        k[len(prefix)] for k in owners if len(k) > len(prefix) and k[: len(prefix)] == prefix
    }
    for child in sorted(children):
        key = (*prefix, child)
        if owners[key] & chosen:
            _link(target, key, chosen, owners)


def make_venv(directory: Path, dists: dict[str, Distribution]) -> Path:
    """A venv at ``directory`` with only ``dists`` (symlinked), churnscale from this checkout
    (``src`` on a ``.pth`` line) and the import blocker; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    owners = _owners()
    chosen = set(dists)
    tops = {parts[:1] for dist in dists.values() for parts in _files(dist)}
    for top in sorted(tops):
        _link(site, top, chosen, owners)
    (site / "churnscale-src.pth").write_text(f"{ROOT / 'src'}\n")
    shutil.copy(BLOCKER, site / "import_blocker.py")
    (site / "zz-import-blocker.pth").write_text("import import_blocker\n")
    return python
