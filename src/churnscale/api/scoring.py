"""``churnscale.score``: every customer of a source scored into Parquet (``churnscale score``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from churnscale.api.datasets import Progress, source_path
from churnscale.api.inputs import Data
from churnscale.api.models import ChurnModel, load_model
from churnscale.config import Settings, load_settings
from churnscale.exceptions import ConfigError, InputTypeError

if TYPE_CHECKING:
    from churnscale.scoring.local import ScoreInfo


def score(
    data: Data,
    model: ChurnModel | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    reasons: bool = False,
    value: str | None = None,
    rank: bool = False,
    cluster: str | None = None,
    settings: Settings | None = None,
    on_progress: Progress | None = None,
) -> ScoreInfo:
    """Score every customer of ``data`` into the Parquet file ``out``: id,
    ``churn_probability``, ``decile`` (1 = the 10% most at risk) and, with ``reasons``, the
    top-3 reasons. ``value`` names a numeric column of ``data`` holding each customer's value:
    the output then has ``value`` and ``expected_loss`` (``churn_probability × value``; for a
    survival model ``expected_loss_H`` at each horizon too). ``rank`` writes the rows by
    expected loss (churn probability without ``value``), highest first, with ``rank``.
    ``data`` is any source or a table in memory; ``model`` a
    :class:`ChurnModel`, a registry reference (``churn@champion``) or a bundle directory.
    Unreadable rows go to ``OUT.quarantine.jsonl``. ``cluster`` (``local:N`` or a scheduler
    address) scores each Parquet row group on a Dask worker that loads the model itself (a
    reference or path only), and ``out`` is then a directory of parts.

    >>> import churnscale
    >>> customers = churnscale.generate(rows=2_000, seed=1)
    >>> model = churnscale.train(customers, target="churned", max_rounds=50)
    >>> info = churnscale.score(churnscale.generate(rows=200, seed=5), model, home / "s.parquet")
    >>> info.rows, info.rejected
    (200, 0)
    """
    settings = settings or load_settings()
    if cluster is not None and (value is not None or rank):
        raise ConfigError("--cluster", expected="no --value-col or --rank", received=cluster)
    if cluster is not None:
        from churnscale.scoring.cluster import score_on_cluster

        if isinstance(model, ChurnModel):
            raise InputTypeError(
                "model", expected="a reference or bundle path with cluster", received=model
            )
        return score_on_cluster(
            os.fspath(data),  # type: ignore[arg-type]
            os.fspath(model),
            Path(out),
            settings=settings,
            cluster=cluster,
            reasons=reasons,
            on_progress=on_progress,
        )
    from churnscale.scoring.local import score as score_source

    loaded = model if isinstance(model, ChurnModel) else load_model(model, settings=settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=settings.home, prefix=".frame-") as scratch,
        source_path(data, Path(scratch)) as source,
    ):
        return score_source(
            source,
            loaded.model,
            Path(out),
            settings=settings,
            reasons=reasons,
            value_column=value,
            rank=rank,
            on_progress=on_progress,
        )
