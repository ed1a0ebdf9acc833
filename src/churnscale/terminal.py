"""Consoles that show user data as text: no markup, emoji, highlighting or escape codes from it.

Column names, categories, model names, paths and error messages come from users. Printed
through a plain rich console they would be read as markup (``[/bold]`` crashes it,
``[red]x[/red]`` shows as ``x``), and raw control characters would reach the terminal (an
``ESC]0;…`` can retitle it, ``\\r`` can overwrite a line). :class:`PlainConsole` turns every
string it renders, table cells and titles included, into literal text with control and
bidirectional-override characters written as ``\\xNN`` / ``\\uNNNN`` escapes and credentials
masked. Every console the CLI prints through is one of these; styling is given with ``style=``,
never with markup.

>>> printable("a\\x1b[31mb\\u202ec\\td")
'a\\\\x1b[31mb\\\\u202ec\\td'
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

from churnscale.redaction import redact

#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and
#: isolates that can make a name read backwards.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAKS = re.compile("[\n\t]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with control characters escaped; with ``one_line``, newlines and tabs too."""
    text = _UNPRINTABLE.sub(_escape, text)
    return _LINE_BREAKS.sub(_escape, text) if one_line else text


class PlainConsole(Console):
    """A rich console that renders every string literally (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """A string as literal text: markup and emoji codes off, control characters escaped,
        credentials masked (:func:`churnscale.redaction.redact`)."""
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(printable(redact(text)), **kwargs)


def stderr_console() -> PlainConsole:
    """Messages and progress: stderr, never wrapped (a long line stays one line)."""
    return PlainConsole(stderr=True, soft_wrap=True)


def stdout_console() -> PlainConsole:
    """Tables and results: stdout, 160 columns when it is not a terminal."""
    return PlainConsole(width=160)


def styled(text: str, style: str) -> Text:
    """A piece of text in ``style`` (for ``Text.assemble``), as :class:`PlainConsole` would
    render it: control characters escaped, credentials masked."""
    return Text(printable(redact(text)), style=style)
