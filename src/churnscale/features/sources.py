"""``BuildSources``: where a feature build reads its events and static attributes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuildSources:
    """Where the events (and optional static attributes) come from."""

    events: str
    static: str | None = None
    static_time: str | None = None
    storage_options: dict[str, Any] | None = None
