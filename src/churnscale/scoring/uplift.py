"""Batch scoring of an uplift model: id, both arms' outcome probabilities, uplift, action, rank.

The same reading and conforming as churn scoring (:mod:`churnscale.scoring.batches`; bad rows
to the quarantine), the same decisions as the service (:class:`~churnscale.model.decisions.
UpliftDecisions` under the ``CHURNSCALE_UPLIFT_*`` policy). ``rank`` orders every row by the
expected value of treating it (1 = first), so it needs every row: the per-row outputs (a few
numbers each) are kept until the end, then written as one Parquet file with a rename.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.artifacts import replaced_on_success
from churnscale.config import Settings
from churnscale.data.quarantine import Quarantine
from churnscale.exceptions import SchemaError, SourceError
from churnscale.model.decisions import (
    NO_ACTION,
    TREAT,
    UpliftDecisions,
    UpliftPolicy,
    rank_by_value,
)
from churnscale.model.uplift import P_CONTROL, P_TREATED, UPLIFT, UpliftModel
from churnscale.scoring.batches import PROBABILITY, encode, scoring_schema, typed_batches

#: The columns an uplift model's scores hold besides the id.
ACTION, VALUE, RANK = "action", "expected_value", "rank"


def score_uplift(
    source: str,
    model: UpliftModel,
    out: Path,
    *,
    settings: Settings,
    policy: UpliftPolicy | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[int, int, Path | None]:
    """Score every row of ``source`` into ``out``; (rows, rejected rows, quarantine file)."""
    if out.exists():
        raise SourceError(str(out), "already exists; choose a new output file")
    out.parent.mkdir(parents=True, exist_ok=True)
    decisions = UpliftDecisions(model, policy or UpliftPolicy.from_settings(settings))
    schema = scoring_schema(model)
    ids: list[pa.Array] = []
    parts: dict[str, list[np.ndarray]] = {}
    quarantine_path = out.with_name(f"{out.name}.quarantine.jsonl")
    with Quarantine(quarantine_path, max_bad_fraction=settings.max_bad_fraction) as quarantine:
        seen = 0
        for typed, read in typed_batches(source, schema, quarantine, settings):
            for name, values in decisions.decide_matrix(encode(model, typed)).items():
                parts.setdefault(name, []).append(values)
            if schema.id is not None:
                ids.append(typed.column(schema.id).cast(pa.string()))
            seen += read
            if on_progress is not None:
                on_progress(read)
        quarantine.check(seen)
    if not parts:
        raise SchemaError(f"{source}: no valid rows to score")
    out_of = {name: np.concatenate(values) for name, values in parts.items()}
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    if schema.id is not None:
        columns[schema.id] = pa.chunked_array(ids, pa.string())
    columns[PROBABILITY] = pa.array(out_of[P_CONTROL])
    columns[P_TREATED] = pa.array(out_of[P_TREATED])
    columns[UPLIFT] = pa.array(out_of[UPLIFT])
    columns[VALUE] = pa.array(out_of["value"])
    columns[ACTION] = pa.array(np.where(out_of["treat"], TREAT, NO_ACTION))
    columns[RANK] = pa.array(rank_by_value(out_of["value"]))
    with replaced_on_success(out) as partial:
        pq.write_table(pa.table(columns), partial)
    rows = int(out_of[UPLIFT].size)
    return rows, quarantine.count, quarantine_path if quarantine.count else None


def choose_targets(
    value: np.ndarray, *, action_cost: float, budget: int | None, max_cost: float | None
) -> np.ndarray:
    """Rows to treat for the most expected incremental value: every row worth more than its
    cost, best first, at most ``budget`` of them and at most ``max_cost`` spent in all."""
    order = np.argsort(-np.asarray(value, dtype=np.float64), kind="stable")
    order = order[value[order] > 0]
    if budget is not None:
        order = order[:budget]
    if max_cost is not None and action_cost > 0:
        order = order[: int(max_cost // action_cost)]
    return order


def target(
    source: str,
    model: UpliftModel,
    out: Path,
    *,
    settings: Settings,
    budget: int | None = None,
    max_cost: float | None = None,
) -> dict[str, float]:
    """Write the customers of ``source`` to treat (best first) to ``out``; the totals."""
    if budget is None and max_cost is None:
        raise SourceError("--budget/--max-cost", "give a number of customers or a cost limit")
    policy = UpliftPolicy.from_settings(settings)
    every = out.with_name(f".{out.name}.all.parquet")
    every.unlink(missing_ok=True)
    try:
        score_uplift(source, model, every, settings=settings, policy=policy)
        scored = pq.read_table(every)
    finally:
        every.unlink(missing_ok=True)
    value = scored.column(VALUE).to_numpy()
    chosen = choose_targets(value, action_cost=policy.action_cost, budget=budget, max_cost=max_cost)
    picked = scored.take(pa.array(chosen)).drop_columns([ACTION, RANK])
    with replaced_on_success(out) as partial:
        pq.write_table(picked, partial)
    uplift = scored.column(UPLIFT).to_numpy()
    return {
        "customers": float(scored.num_rows),
        "treated": float(chosen.size),
        "incremental_outcomes": float(uplift[chosen].sum()),
        "expected_value": float(value[chosen].sum()),
        "cost": float(chosen.size * policy.action_cost),
    }
