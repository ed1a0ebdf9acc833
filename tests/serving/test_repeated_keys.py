"""The customer decoders refuse every repeated key and accept every body without one.

The decoders first try a cheap proof (:func:`churnscale.serving.jsonbody.quotes_prove_unique`:
the body's quotes against the keys and string values the parser kept) and fall back to a pair
by pair parse; these properties hold whichever of the two decides. Bodies are generated with
string values that hold quotes, backslashes, ``":`` and unicode escapes, spacing around the
separators, and optional keys present or absent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.serving.customer import CustomerDecoder
from churnscale.serving.errors import InvalidInputError

SCHEMA = Schema(
    (
        ColumnSpec("customer_id", Role.ID),
        ColumnSpec("plan", Role.CATEGORICAL),
        ColumnSpec("region", Role.CATEGORICAL),
        ColumnSpec("since", Role.DATETIME),
        ColumnSpec("charges", Role.NUMERIC),
        ColumnSpec("paperless", Role.BOOLEAN),
        ColumnSpec("churned", Role.TARGET),
    ),
    positive_label="true",
)
DECODER = CustomerDecoder(SCHEMA)
TEXT = st.text(alphabet=st.sampled_from('ab"\\:, {}[]é\u2028'), max_size=8)
VALUES: dict[str, Any] = {
    "customer_id": st.one_of(TEXT, st.integers(-(2**63), 2**63 - 1)),
    "plan": st.one_of(TEXT, st.integers(0, 99), st.none()),
    "region": st.one_of(TEXT, st.none()),
    "since": st.sampled_from(["2026-06-30", "2026-06-30T12:00:00", None]),
    "charges": st.one_of(st.floats(-1e6, 1e6), st.none()),
    "paperless": st.one_of(st.booleans(), st.none()),
}
REQUIRED = ["plan", "region", "since", "charges", "paperless"]


@st.composite
def customers(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A customer's (key, value) pairs in some order: every feature, the id or not."""
    keys = REQUIRED + (["customer_id"] if draw(st.booleans()) else [])
    pairs = [(key, draw(VALUES[key])) for key in keys]
    return draw(st.permutations(pairs))


def _body(pairs: list[tuple[str, Any]], spaced: bool, ascii_only: bool) -> bytes:
    colon = " : " if spaced else ":"
    items = [
        json.dumps(key) + colon + json.dumps(value, ensure_ascii=ascii_only) for key, value in pairs
    ]
    return ("{" + ", ".join(items) + "}").encode()


@settings(max_examples=400, deadline=None)
@given(customers(), st.booleans(), st.booleans())
def test_a_body_without_a_repeated_key_is_accepted(
    pairs: list[tuple[str, Any]], spaced: bool, ascii_only: bool
) -> None:
    x = DECODER.decode(_body(pairs, spaced, ascii_only))
    for key, value in pairs:
        if key == "since" and value is not None:
            assert x[key].isoformat().startswith(value)
        else:
            assert x[key] == value


@settings(max_examples=400, deadline=None)
@given(customers(), st.data(), st.booleans(), st.booleans())
def test_a_repeated_key_is_refused_naming_it(
    pairs: list[tuple[str, Any]], data: st.DataObject, spaced: bool, ascii_only: bool
) -> None:
    key, _ = data.draw(st.sampled_from(pairs))
    at = data.draw(st.integers(0, len(pairs)))
    repeated = [*pairs[:at], (key, data.draw(VALUES[key])), *pairs[at:]]
    body = _body(repeated, spaced, ascii_only)
    with pytest.raises(InvalidInputError, match="repeated") as refused:
        DECODER.decode(body)
    assert refused.value.field == key
    with pytest.raises(InvalidInputError, match="repeated"):
        DECODER.decode_many(b"[" + _body(pairs, spaced, ascii_only) + b"," + body + b"]")
