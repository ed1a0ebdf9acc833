"""Rows that failed to parse or validate, kept with their file, line and reason.

Nothing is dropped silently: every rejected row becomes one JSON line in the quarantine file,
and the run aborts when the rejected fraction passes ``max_bad_fraction``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import orjson

from churnscale.exceptions import QuarantineLimitError


@dataclass(frozen=True)
class Reject:
    """One rejected row: where it was and why."""

    source: str
    line: int
    reason: str
    column: str | None = None
    value: str | None = None


class Quarantine:
    """Collects rejected rows into a JSON Lines file and enforces the bad-row limit."""

    def __init__(self, path: Path, *, max_bad_fraction: float = 0.01) -> None:
        self.path = path
        self.max_bad_fraction = max_bad_fraction
        self.count = 0
        self.reasons: Counter[str] = Counter()
        self._file: IO[bytes] | None = None

    def add(self, rejects: list[Reject]) -> None:
        """Record ``rejects`` (opening the file on the first one)."""
        if not rejects:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb")
        lines = b"".join(orjson.dumps(asdict(r)) + b"\n" for r in rejects)
        self._file.write(lines)
        self.count += len(rejects)
        self.reasons.update(r.reason.split(":")[0] for r in rejects)

    def check(self, total_rows: int) -> None:
        """Raise :class:`QuarantineLimitError` when too many of ``total_rows`` were rejected."""
        if total_rows and self.count / total_rows > self.max_bad_fraction:
            self.close()
            raise QuarantineLimitError(
                bad=self.count,
                total=total_rows,
                limit=self.max_bad_fraction,
                quarantine=str(self.path),
            )

    def close(self) -> None:
        """Flush and close the quarantine file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_quarantine(path: Path) -> list[Reject]:
    """All rejects recorded in a quarantine file (empty when there is none)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        return [Reject(**orjson.loads(line)) for line in handle if line.strip()]
