"""Value at risk: what a customer's churn would cost, P(churn within H) × the customer's value.

A model's churn probabilities are its outputs named ``churn_probability`` (every kind; for a
survival model, churn within its last horizon) and ``churn_within_H`` (a survival model, at
each horizon ``H``). Each gets an expected loss beside it: ``expected_loss`` and
``expected_loss_H``. The value is given per customer (a column of the scored data, or a field
of a request); it must be a finite number >= 0, and a missing value gives a missing loss.

>>> import numpy as np
>>> losses = expected_losses(
...     {"churn_probability": np.array([0.5, 0.1]), "churn_within_3": np.array([0.2, 0.0])},
...     np.array([100.0, 40.0]),
... )
>>> {name: values.tolist() for name, values in losses.items()}
{'expected_loss': [50.0, 4.0], 'expected_loss_3': [20.0, 0.0]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from churnscale.exceptions import SchemaError

VALUE = "value"
EXPECTED_LOSS = "expected_loss"
_PROBABILITY = "churn_probability"
_WITHIN = "churn_within_"


def loss_name(output: str) -> str | None:
    """The expected-loss name of a churn-probability output, None for any other output.

    >>> loss_name("churn_probability"), loss_name("churn_within_6"), loss_name("survival_6")
    ('expected_loss', 'expected_loss_6', None)
    """
    if output == _PROBABILITY:
        return EXPECTED_LOSS
    if output.startswith(_WITHIN):
        return f"{EXPECTED_LOSS}_{output.removeprefix(_WITHIN)}"
    return None


def loss_names(outputs: tuple[str, ...] | list[str]) -> list[str]:
    """The expected-loss names of a model's outputs, in their order."""
    return [name for output in outputs if (name := loss_name(output)) is not None]


def expected_losses(outputs: Mapping[str, np.ndarray], value: np.ndarray) -> dict[str, np.ndarray]:
    """``probability × value`` for every churn-probability output, by its loss name
    (NaN where the value is missing)."""
    return {
        name: np.asarray(probability, dtype=np.float64) * value
        for output, probability in outputs.items()
        if (name := loss_name(output)) is not None
    }


def first_bad(values: np.ndarray) -> int | None:
    """The index of the first negative or infinite value (NaN, a missing value, is allowed),
    or None when every value is fine."""
    bad = np.isinf(values) | (values < 0)
    return int(np.argmax(bad)) if bad.any() else None


def bad_value(value: object, *, field: str, where: str = "") -> SchemaError:
    """The error for a value that is not a finite number >= 0, naming ``field``."""
    suffix = f" ({where})" if where else ""
    return SchemaError(f"a value must be a finite number >= 0, got {value!r}{suffix}", column=field)


def checked_value(value: object, *, field: str) -> float | None:
    """One request's value: None when missing, else a finite float >= 0 (else a
    :class:`SchemaError` naming ``field``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_value(value, field=field)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise bad_value(value, field=field)
    return number
