from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from churnscale.exceptions import ConfigError
from churnscale.registry import BundleCache, ModelRef, parse_reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef("churn")),
        ("churn/3", ModelRef("churn", version=3)),
        ("churn@champion", ModelRef("churn", alias="champion")),
        ("churn.v2_b-1@challenger", ModelRef("churn.v2_b-1", alias="challenger")),
    ],
)
def test_registry_references(text: str, expected: ModelRef) -> None:
    assert parse_reference(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["./model", "../x", "/abs/bundle", "runs/2026/model", "~/m"])
def test_paths_are_paths_only_when_allowed(text: str) -> None:
    assert isinstance(parse_reference(text), Path)
    with pytest.raises(ConfigError, match="model reference: expected NAME, NAME/VERSION"):
        parse_reference(text, allow_paths=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("%2e%2e", "model name: expected 1-100 characters"),
        ("..", "model reference"),
        ("..@champion", "model name"),
        ("a..b/1", "model name"),
        ("churn/0", "model version: expected a positive integer, got '0'"),
        ("churn/-1", "model version: expected a positive integer, got '-1'"),
        ("churn@", "model alias: expected 1-100 characters"),
        ("churn@latest", "model alias"),
        ("churn@v3", "model alias"),
        ("churn@../x", "model alias"),
        ("/1", "model name"),
        ("x" * 101, "model name"),
        ("", "model reference"),
        ("chu rn", "model name"),
    ],
)
def test_bad_references_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_reference(text, allow_paths=False)


@given(st.text(max_size=40))
def test_no_reference_leaves_the_cache(text: str) -> None:
    """R13: whatever a user types, a registry reference maps inside the cache root."""
    cache = BundleCache(Path("/srv/cache"))
    try:
        ref = parse_reference(text, allow_paths=False)
    except ConfigError:
        return
    assert isinstance(ref, ModelRef)
    target = cache.version_dir(ref.name, ref.version or 1)
    assert os.path.normpath(target).startswith("/srv/cache/")
    assert target.parent.name == ref.name and ".." not in target.parts


def test_importing_the_registry_does_not_import_mlflow() -> None:
    code = "import sys, churnscale.registry, churnscale.cli; print('mlflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
