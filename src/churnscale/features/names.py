"""Feature names LightGBM accepts, for any column name a CSV can hold.

LightGBM refuses a feature name holding ``"``, ``,``, ``:``, ``[``, ``]``, ``{`` or ``}`` ("Do
not support special JSON characters in feature name"), silently turns spaces into underscores
(so ``a b`` and ``a_b`` then collide, which it refuses too), and writes the names into its
model text, which other readers (lleaves, ONNX converters) split on spaces. The trees are
therefore given *internal* names: a column name made only of ASCII letters, digits, ``_``,
``.`` and ``-`` is kept as it is (so models of such data are unchanged, byte for byte), any
other is sanitised and made unique. Only LightGBM sees these names: reports, reasons, drift
and the service use the user's names (``Preprocessor.feature_names``) by position.

>>> lightgbm_names(["tenure", 'plan "gold"', "a b", "a_b", "ünï", "", "a_b_1"])
['tenure', 'plan__gold_', 'a_b_2', 'a_b', '_n_', '_', 'a_b_1']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SAFE = re.compile(r"[A-Za-z0-9_.\-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_.\-]")


def lightgbm_names(names: Sequence[str]) -> list[str]:
    """Names for LightGBM, position for position: safe names kept, the others sanitised and
    suffixed (``_1``, ``_2``, …) until unique. Deterministic for a given list."""
    kept = [name if _SAFE.fullmatch(name) else None for name in names]
    taken = {name for name in kept if name is not None}
    if len(taken) == len(names):
        return list(names)
    seen: set[str] = set()
    result: list[str] = []
    for name, safe in zip(names, kept, strict=True):
        if safe is not None and safe not in seen:
            seen.add(safe)
            result.append(safe)
            continue
        base = _UNSAFE_CHAR.sub("_", name) or "_"
        candidate, suffix = base, 0
        while candidate in taken or candidate in seen:
            suffix += 1
            candidate = f"{base}_{suffix}"
        seen.add(candidate)
        taken.add(candidate)
        result.append(candidate)
    return result
