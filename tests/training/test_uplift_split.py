from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from churnscale.exceptions import TrainingError
from churnscale.training.plan import TEST, TRAIN
from churnscale.training.uplift_split import fold_of_rows, holdout_sides, strata_of


def _strata(rows: int, seed: int, *, treated: float = 0.3, rate: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return strata_of(rng.random(rows) < treated, rng.random(rows) < rate)


@pytest.mark.parametrize(("rows", "seed", "fraction"), [(5_000, 1, 0.2), (7_777, 0, 0.35)])
def test_the_holdout_is_the_rows_sklearn_picks(rows: int, seed: int, fraction: float) -> None:
    strata = _strata(rows, seed)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(rows), strata))
    sides = holdout_sides(strata, valid_fraction=fraction, seed=seed)
    assert sides.dtype == np.int8
    np.testing.assert_array_equal(np.flatnonzero(sides == TRAIN), np.sort(train))
    np.testing.assert_array_equal(np.flatnonzero(sides == TEST), np.sort(test))


def test_another_seed_picks_other_rows() -> None:
    strata = _strata(3_000, 2)
    first = holdout_sides(strata, valid_fraction=0.2, seed=0)
    assert not np.array_equal(first, holdout_sides(strata, valid_fraction=0.2, seed=1))


@pytest.mark.parametrize(("folds", "seed"), [(3, 0), (5, 42)])
def test_the_folds_are_those_sklearn_tests_each_row_in(folds: int, seed: int) -> None:
    strata = _strata(4_321, seed, treated=0.6, rate=0.2)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    fold = fold_of_rows(strata, folds=folds, seed=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(strata.size), strata)):
        np.testing.assert_array_equal(np.flatnonzero(fold == k), test)


def test_a_stratum_of_one_row_is_refused() -> None:
    strata = np.array([0] * 50 + [1] * 50 + [3], dtype=np.int8)
    with pytest.raises(
        TrainingError, match=r"at least 2 rows to split on; got \{0: 50, 1: 50, 3: 1\}"
    ):
        holdout_sides(strata, valid_fraction=0.2, seed=0)
