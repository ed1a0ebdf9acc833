"""Batch scoring: a source → Parquet of id, churn probability, decile (+ reasons).

:func:`score` streams on one machine; :func:`score_on_cluster` scores the row groups on a
Dask cluster into a directory of Parquet parts. Both use the service's predictor and the same
global deciles.
"""

from churnscale.scoring.deciles import BINS, ScoreHistogram, decile_edges, deciles
from churnscale.scoring.local import ScoreInfo, score

__all__ = ["BINS", "ScoreHistogram", "ScoreInfo", "decile_edges", "deciles", "score"]
