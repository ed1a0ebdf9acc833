"""R20: training is reproducible across thread counts, and distributed matches local.

Pass figure: two local trainings with the same seed on 1 and on 2 threads give identical tree
sections of the LightGBM model text (byte for byte) and identical hold-out scores; the
distributed run on a ``local:2`` Dask cluster reaches a hold-out AUC within 0.005 of local.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from rel_support import FAST
from sklearn.metrics import roc_auc_score

from churnscale.training.distributed import train_distributed
from churnscale.training.local import train_local

pytestmark = pytest.mark.reliability


def _trees(model_text: str) -> str:
    """The tree sections: from the first ``Tree=`` line to ``end of trees``."""
    start = model_text.index("Tree=0")
    return model_text[start : model_text.index("end of trees", start)]


def test_same_seed_different_threads_gives_identical_trees(dist_dataset: Path) -> None:
    one = train_local(dist_dataset, params=dataclasses.replace(FAST, threads=1, seed=3))
    two = train_local(dist_dataset, params=dataclasses.replace(FAST, threads=2, seed=3))
    trees_one = _trees(one.model.booster.model_to_string())
    trees_two = _trees(two.model.booster.model_to_string())
    print(f"R20: {one.model.booster.num_trees()} trees, {len(trees_one):,} bytes of tree text")
    assert trees_one == trees_two
    np.testing.assert_array_equal(one.scores, two.scores)


@pytest.mark.slow
@pytest.mark.integration
def test_distributed_auc_within_0_005_of_local(dist_dataset: Path) -> None:
    local = train_local(dist_dataset, params=FAST)
    dist = train_distributed(dist_dataset, cluster="local:2", params=FAST, memory_limit="1GiB")
    np.testing.assert_array_equal(dist.y_holdout, local.y_holdout)
    local_auc = roc_auc_score(local.y_holdout, local.scores)
    dist_auc = roc_auc_score(dist.y_holdout, dist.scores)
    print(f"R20: hold-out AUC local {local_auc:.5f}, distributed {dist_auc:.5f}")
    assert abs(dist_auc - local_auc) <= 0.005
