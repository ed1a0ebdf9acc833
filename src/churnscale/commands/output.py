"""What the training and evaluation commands print alike: a summary as JSON, the leakage
warnings, and where a run put its report, registered version and bundle."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from churnscale.terminal import stderr_console, stdout_console

if TYPE_CHECKING:
    from churnscale.evaluation.leakage import LeakageWarning


def print_json(summary: Mapping[str, Any]) -> None:
    """``summary`` as indented JSON on stdout (``--json``)."""
    sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")


def print_leakage(warnings: Iterable[LeakageWarning]) -> None:
    """One line on stderr per leakage warning."""
    from rich.text import Text

    from churnscale.terminal import styled

    for warning in warnings:
        stderr_console().print(
            Text.assemble(("leakage warning:", "yellow"), " ", styled(warning.message, ""))
        )


def print_places(outcome: Any) -> None:
    """Where a training run put its report, and its registered version and bundle if any
    (``outcome``: a training, survival or uplift outcome)."""
    out = stdout_console()
    out.print(f"report: {outcome.report}")
    if outcome.version:
        out.print(f"registered: {outcome.version} (run {outcome.run_id})")
    if outcome.bundle:
        out.print(f"bundle: {outcome.bundle}")
