"""The layer order, checked from the imports themselves (docs/architecture.md, "Layers").

Every ``import`` in ``src/churnscale`` counts: at module level, inside functions (lazy imports)
and under ``if TYPE_CHECKING``. A module may import from its own layer or below, never from
above, and no modules or packages may import each other in a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Bottom to top. A module belongs to the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "churnscale.config",
        "churnscale.exceptions",
        "churnscale.extras",
        "churnscale.redaction",
        "churnscale.version",
    ),
    ("churnscale.artifacts", "churnscale.unpickling", "churnscale.terminal"),
    ("churnscale.data", "churnscale.registry"),
    ("churnscale.features",),
    ("churnscale.model", "churnscale.value"),
    ("churnscale.evaluation", "churnscale.monitoring"),
    ("churnscale.training", "churnscale.online", "churnscale.neural"),
    ("churnscale.scoring", "churnscale.serving", "churnscale.export"),
    (
        "churnscale.commands",
        "churnscale.api",
        "churnscale.sklearn",
        "churnscale.progress",
        "churnscale.demo",
    ),
    ("churnscale.cli", "churnscale.__main__", "churnscale"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "churnscale").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The churnscale module that ``name`` (a module or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in MODULES else base


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_target(n) for n in _imported(module, path) if n.startswith("churnscale")}
        edges[module] = {t for t in targets if t is not None and t != module}
    return edges


EDGES = _edges()


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module``'s layer."""
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1]


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_import_graph_is_read() -> None:
    assert len(MODULES) > 100
    assert "churnscale.model.contract" in EDGES["churnscale.model.lightgbm"]
    assert "churnscale.model.mlp" in EDGES["churnscale.model.loading"]  # a lazy import counts


def test_every_module_has_a_layer() -> None:
    """A new package or root module must be placed in LAYERS (and docs/architecture.md)."""
    named = {prefix for prefixes in LAYERS for prefix in prefixes}
    unplaced = sorted(
        m for m in MODULES if ".".join(m.split(".")[:2]) not in named and m != "churnscale"
    )
    assert unplaced == []


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [
        f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
        for m, targets in sorted(EDGES.items())
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert _circles(EDGES) == []


def test_no_packages_import_each_other_in_a_circle() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in EDGES.items():
        outside = {_package(t) for t in targets} - {_package(module)}
        packages.setdefault(_package(module), set()).update(outside)
    assert _circles(packages) == []


@pytest.mark.parametrize(
    ("edges", "circle"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_circle_check_finds_circles(
    edges: dict[str, set[str]], circle: list[list[str]]
) -> None:
    assert _circles(edges) == circle
