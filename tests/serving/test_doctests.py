from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from churnscale.serving import errors, jsonbody, limits, query, routing, security


@pytest.mark.parametrize(
    "module", [errors, jsonbody, limits, query, routing, security], ids=lambda m: m.__name__
)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
