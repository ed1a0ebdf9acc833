from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from churnscale.features.histograms import Histogram, quantile_edges
from churnscale.monitoring.statistics import chi_squared, ks_binned, psi


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = np.array([100, 200, 300, 400])
    assert psi(reference, reference * 3) == pytest.approx(0.0)
    small = psi(reference, np.array([110, 200, 300, 390]))
    large = psi(reference, np.array([400, 300, 200, 100]))
    assert 0 < small < 0.01 < 0.2 < large


def test_psi_of_an_empty_bin_is_large_but_finite() -> None:
    value = psi(np.array([50, 50, 0]), np.array([40, 40, 20]))
    assert np.isfinite(value) and value > 1.0


def test_binned_ks_matches_scipy_on_values_that_fall_on_the_bins() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, 4_000), rng.integers(1, 11, 3_000)
    ra, rb = np.bincount(a, minlength=11), np.bincount(b, minlength=11)
    statistic, p_value = ks_binned(ra, rb)
    exact = stats.ks_2samp(a, b)
    assert statistic == pytest.approx(exact.statistic)
    assert p_value == pytest.approx(exact.pvalue, abs=1e-6)


def test_chi_squared_matches_scipy_and_ignores_bins_empty_on_both_sides() -> None:
    reference, current = np.array([30, 50, 0, 20]), np.array([25, 60, 0, 15])
    statistic, p_value = chi_squared(reference, current)
    expected = stats.chi2_contingency(np.array([[30, 50, 20], [25, 60, 15]]), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)
    assert chi_squared(np.array([5, 0]), np.array([9, 0])) == (0.0, 1.0)


def test_quantile_edges_of_a_discrete_feature_are_values_it_takes() -> None:
    values = np.repeat([0.0, 5.0, 10.0, 20.0], [600, 200, 120, 80])
    edges = quantile_edges(values)
    histogram = Histogram("discount", "numeric", edges=edges)
    histogram.add(np.concatenate([values, [np.nan, -1.0]]))
    assert edges == [0.0, 5.0, 10.0]  # the top decile starts at 10, so 10 and 20 share it
    # below the minimum, 0, 5, 10 and above, missing
    assert histogram.counts.tolist() == [1, 600, 200, 200, 1]


def test_quantile_edges_of_a_continuous_feature_hold_equal_shares() -> None:
    values = np.random.default_rng(3).normal(size=10_000)
    histogram = Histogram("x", "numeric", edges=quantile_edges(values))
    histogram.add(values)
    assert histogram.counts[0] == 0 and histogram.counts[-1] == 0
    assert np.all(np.abs(histogram.counts[1:-1] - 1_000) <= 1)


def test_categorical_histogram_sends_rare_and_unseen_codes_to_other() -> None:
    histogram = Histogram("plan", "categorical", categories=["basic", "premium"])
    histogram.add(np.array([0.0, 1.0, 1.0, 2.0, 7.0, np.nan]))
    assert histogram.labels() == ["basic", "premium", "<other>", "<missing>"]
    assert histogram.counts.tolist() == [1, 2, 2, 1]


def test_histogram_round_trips_and_refuses_counts_that_do_not_fit() -> None:
    histogram = Histogram("x", "numeric", edges=[1.0, 2.0])
    histogram.add(np.array([0.5, 1.5, 2.5, np.nan]))
    assert Histogram.from_dict(histogram.to_dict()).counts.tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="counts do not match"):
        Histogram.from_dict({**histogram.to_dict(), "counts": [1, 2]})
    with pytest.raises(ValueError, match="unknown histogram kind"):
        Histogram.from_dict({**histogram.to_dict(), "kind": "text"})
