"""Features: the Preprocessor shared by training, scoring and serving, and point-in-time rows
built from event logs (:func:`build`, imported when first used)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnscale.features.building import build

__all__ = ["build"]


def __getattr__(name: str) -> Any:
    if name == "build":
        from churnscale.features.building import build

        return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
