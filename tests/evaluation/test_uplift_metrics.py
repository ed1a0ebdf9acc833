from __future__ import annotations

import numpy as np
import pytest

from churnscale.evaluation.uplift import effect, evaluate_uplift, uplift_at
from churnscale.evaluation.uplift_curves import qini_auc, qini_curve, uplift_auc
from churnscale.exceptions import ConfigError


def _rows(seed: int, n: int = 3_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = (rng.random(n) < 0.5).astype(np.int64)
    y = (rng.random(n) < 0.2 + 0.1 * t * (x > 0)).astype(np.int64)
    score = np.round(x + rng.normal(scale=0.5, size=n), 1)  # rounded: many ties
    return y, score, t


def test_qini_curve_of_a_small_case_by_hand() -> None:
    # ranked: (y=1,t=1), (y=0,t=0), (y=1,t=0), (y=0,t=1)
    y, t = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 1])
    curve = qini_curve(y, np.array([0.9, 0.5, 0.3, 0.1]), t)
    # n=1: 1 - 0; n=2: 1 - 0*1/1; n=3: 1 - 1*1/2; n=4: 1 - 1*2/2
    assert curve.x.tolist() == [0, 1, 2, 3, 4]
    assert curve.y.tolist() == [0, 1, 1, 0.5, 0]


@pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated:FutureWarning")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_areas_and_top_share_equal_scikit_uplift(seed: int) -> None:
    from sklift import metrics as sklift  # test-only dependency (requirements/dev.in)

    y, score, t = _rows(seed)
    assert qini_auc(y, score, t) == pytest.approx(sklift.qini_auc_score(y, score, t), abs=1e-12)
    assert uplift_auc(y, score, t) == pytest.approx(sklift.uplift_auc_score(y, score, t), abs=1e-12)
    expected = sklift.uplift_at_k(y, score, t, strategy="overall", k=0.3)
    assert uplift_at(y, score, t, 0.3) == pytest.approx(expected, abs=1e-12)


def test_a_good_ranking_beats_random_and_the_interval_covers_the_effect() -> None:
    y, score, t = _rows(4, 20_000)
    result = evaluate_uplift(y, score, t)
    shuffled = evaluate_uplift(y, np.random.default_rng(0).permutation(score), t)
    assert result.qini > 0.04 > abs(shuffled.qini)
    assert result.ate.low < 0.05 < result.ate.high  # true average effect: 0.1 * P(x > 0)
    assert result.deciles[0]["observed"] > result.deciles[-1]["observed"]
    assert result.targeting[0].uplift_top > result.ate.uplift
    assert set(result.to_dict()) >= {"qini", "auuc", "uplift_at_30", "ate", "deciles"}


def test_an_arm_with_no_rows_gives_nan_and_bad_labels_are_refused() -> None:
    assert np.isnan(effect(np.array([1, 0]), np.array([1, 1])).uplift)
    with pytest.raises(ConfigError, match="treatment"):
        qini_auc(np.array([1, 0]), np.array([0.1, 0.2]), np.array([2, 0]))
