"""The one query-string parser of every route: each parameter a route declares, at most once.

The gateway parses the query of every request with :func:`parse_query` before any route runs
(the fast path only takes ``/v1/predict`` without a query), so no route can read one
differently. Refused with a 422 naming the parameter (``loc: ["query", name]``): a name the
route does not declare (a misspelt parameter must not be silently ignored), a parameter given
twice (which value was meant is not ours to guess), a segment with an empty name
(``?reasons=true&=``), a value its parser refuses, and percent-escapes that are not UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from churnscale.serving.errors import InvalidInputError

#: A parameter's parser: its text (percent-decoded) → its value, or InvalidInputError.
Parser = Callable[[str, str], Any]
_BOOLEANS = {"true": True, "false": False}


def boolean(name: str, text: str) -> bool:
    """``true`` or ``false`` (any case; not 1/0, which the OpenAPI schema does not allow).

    >>> boolean("reasons", "False")
    False
    """
    value = _BOOLEANS.get(text.lower())
    if value is None:
        raise InvalidInputError(
            f"expected true or false, got {text!r}", field=name, location="query"
        )
    return value


def parse_query(query: bytes, declared: Mapping[str, Parser]) -> dict[str, Any]:
    """The parameters of ``query`` (raw, as on the wire), each parsed by its declared parser.

    >>> parse_query(b"reasons=true", {"reasons": boolean})
    {'reasons': True}
    >>> parse_query(b"reasons=true&reasons=false", {"reasons": boolean})
    Traceback (most recent call last):
    ...
    churnscale.serving.errors.InvalidInputError: reasons: given more than once; send it once
    """
    if not query:
        return {}
    found: dict[str, Any] = {}
    for part in query.split(b"&"):
        raw_name, _, raw_value = part.partition(b"=")
        name = _decoded(raw_name, "a query parameter's name")
        if not name:
            raise InvalidInputError(
                "a query parameter has no name", field="(empty name)", location="query"
            )
        parser = declared.get(name)
        if parser is None:
            expected = ", ".join(declared) or "none on this route"
            raise InvalidInputError(
                f"unknown query parameter; expected: {expected}", field=name, location="query"
            )
        if name in found:
            message = "given more than once; send it once"
            raise InvalidInputError(message, field=name, location="query")
        found[name] = parser(name, _decoded(raw_value, name))
    return found


def _decoded(raw: bytes, what: str) -> str:
    try:
        return unquote_plus(raw.decode("latin-1"), errors="strict")
    except UnicodeDecodeError:
        raise InvalidInputError(
            "percent-escapes that are not UTF-8", field=what, location="query"
        ) from None
