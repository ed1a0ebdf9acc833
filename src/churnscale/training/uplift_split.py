"""Splits of an experiment's rows stratified on arm × outcome, in a few bytes a row.

:func:`holdout_sides` picks exactly the rows that scikit-learn's
``StratifiedShuffleSplit(n_splits=1, test_size=valid_fraction, random_state=seed)`` puts in its
test set, and :func:`fold_of_rows` gives each row the fold that
``StratifiedKFold(folds, shuffle=True, random_state=seed)`` tests it in: the same random draws in
the same order, but the result is one ``int8`` a row instead of index lists (scikit-learn builds
Python lists of every training index, hundreds of bytes a row at 10M rows).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.extmath import _approximate_mode

from churnscale.exceptions import TrainingError
from churnscale.training.plan import TEST, TRAIN


def strata_of(treated: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The stratum of each row: 2 × arm + outcome (0-3), one byte a row."""
    return (2 * np.asarray(treated, dtype=np.int8) + np.asarray(y, dtype=np.int8)).astype(np.int8)


def holdout_sides(strata: np.ndarray, *, valid_fraction: float, seed: int) -> np.ndarray:
    """TRAIN or TEST for each row, as ``StratifiedShuffleSplit`` with ``seed`` splits them."""
    n_test = math.ceil(valid_fraction * strata.size)
    n_train = strata.size - n_test
    counts = np.bincount(strata, minlength=4)
    classes = np.flatnonzero(counts)
    class_counts = counts[classes]
    if class_counts.size == 0 or class_counts.min() < 2:
        raise TrainingError(
            "every arm × outcome stratum present needs at least 2 rows to split on; "
            f"got {dict(zip(classes.tolist(), class_counts.tolist(), strict=True))}"
        )
    if min(n_train, n_test) < classes.size:
        raise TrainingError(
            f"a split of {strata.size} rows with --valid-fraction {valid_fraction} leaves a "
            f"side with fewer rows than the {classes.size} arm × outcome strata"
        )
    rng = np.random.RandomState(seed)
    in_train = _approximate_mode(class_counts, n_train, rng)
    _approximate_mode(class_counts - in_train, n_test, rng)  # drawn too: the same stream after
    sides = np.empty(strata.size, dtype=np.int8)
    for stratum, count, train in zip(classes, class_counts, in_train, strict=True):
        order = rng.permutation(count)  # as scikit-learn draws it: the rows of one stratum
        within = np.full(count, TEST, dtype=np.int8)
        within[order[:train]] = TRAIN
        del order
        sides[strata == stratum] = within
    return sides


def fold_of_rows(strata: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """The fold (0 to ``folds`` - 1) that ``StratifiedKFold`` with ``seed`` tests each row in."""
    present = np.flatnonzero(np.bincount(strata, minlength=4))
    first = [int(np.argmax(strata == value)) for value in present]
    lookup = np.zeros(4, dtype=np.int8)  # strata numbered by first appearance, as sklearn does
    lookup[present[np.argsort(first)]] = np.arange(present.size, dtype=np.int8)
    encoded = lookup[strata]
    ordered = np.sort(encoded)
    allocation = np.asarray(
        [np.bincount(ordered[i::folds], minlength=present.size) for i in range(folds)]
    )
    del ordered
    rng = np.random.RandomState(seed)
    fold = np.empty(strata.size, dtype=np.int8)
    for k in range(present.size):
        assigned = np.arange(folds).repeat(allocation[:, k])
        rng.shuffle(assigned)
        fold[encoded == k] = assigned
    return fold
