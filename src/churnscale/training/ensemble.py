"""Several LightGBM boosters served as ONE: averaged boosters are one booster, leaves scaled.

A binary booster's raw score is the sum of its trees' leaf values, so a weighted average of
boosters' raw scores is the raw score of a single booster holding every tree, each leaf value
(and internal value, which SHAP uses) multiplied by its booster's weight. :func:`merge_models`
writes that booster as ordinary LightGBM model text, so the merged model is saved, compiled
(lleaves) and served exactly like any other: the fast path sees only more trees.

:func:`train_members` boosts each member on one shared, streamed LightGBM dataset (built once
from every row of a plan) for a fixed number of rounds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np

from churnscale.exceptions import TrainingError
from churnscale.features.preprocessor import Preprocessor
from churnscale.training.local import TrainParams, side_dataset
from churnscale.training.plan import TRAIN, SplitPlan
from churnscale.training.refit import boost_rounds

_SCALED = ("leaf_value=", "internal_value=")
_TREE = re.compile(r"^Tree=\d+$", re.MULTILINE)


@dataclass(frozen=True)
class Member:
    """One booster of an ensemble: its parameters, rounds and weight in the average."""

    params: TrainParams
    rounds: int
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the model's metadata lists its members)."""
        return {"params": self.params.to_dict(), "rounds": self.rounds, "weight": self.weight}


def _split_text(text: str) -> tuple[str, list[str], str]:
    """(header, tree blocks without their ``Tree=`` line, tail from ``end of trees``)."""
    end = text.index("end of trees")
    starts = [m.start() for m in _TREE.finditer(text, 0, end)]
    if not starts:
        raise TrainingError("a booster to merge has no trees")
    header = text[: starts[0]]
    blocks = [text[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    return header, [b.split("\n", 1)[1] for b in blocks], text[end:]


def _scaled_block(block: str, weight: float) -> str:
    lines = []
    for line in block.split("\n"):
        key = next((k for k in _SCALED if line.startswith(k)), None)
        if key is not None:
            values = [repr(float(v) * weight) for v in line[len(key) :].split()]
            line = key + " ".join(values)
        lines.append(line)
    return "\n".join(lines)


def merge_models(boosters: Sequence[lgb.Booster], weights: Sequence[float]) -> lgb.Booster:
    """One booster whose raw score is ``sum(w * raw score)`` of ``boosters`` (binary only)."""
    if not boosters or len(boosters) != len(weights):
        raise TrainingError("merging needs one weight per booster and at least one booster")
    header = tail = ""
    trees: list[str] = []
    for booster, weight in zip(boosters, weights, strict=True):
        head, blocks, end = _split_text(booster.model_to_string())
        if "num_tree_per_iteration=1" not in head:
            raise TrainingError("only binary (one tree per iteration) boosters can be merged")
        header, tail = header or head, tail or end
        trees.extend(_scaled_block(b, weight) for b in blocks)
    # tree_sizes would name the old blocks' byte sizes: without it LightGBM reads them in turn
    header = "\n".join(x for x in header.split("\n") if not x.startswith("tree_sizes="))
    body = "".join(f"Tree={i}\n{block}" for i, block in enumerate(trees))
    merged = lgb.Booster(model_str=header + body + tail)
    # loaded again from LightGBM's own text, so tree_sizes and everything else are canonical
    return lgb.Booster(model_str=merged.model_to_string())


def train_members(
    plan: SplitPlan, pre: Preprocessor, members: Sequence[Member], constraints: list[int] | None
) -> tuple[lgb.Booster, list[Member]]:
    """Every member boosted on the TRAIN side of ``plan`` (one shared dataset), merged; and the
    members as grown (a member stops short of its rounds when no tree can split any more)."""
    if not members:
        raise TrainingError("an ensemble needs at least one member")
    first = members[0].params.lightgbm_params(constraints)
    data_params = {k: first[k] for k in ("max_bin", "force_col_wise", "verbosity", "seed")}
    data_params["feature_pre_filter"] = False  # members differ in min_child_samples
    train = side_dataset(plan, TRAIN, pre, data_params, init_model=None)
    plan.labels[TRAIN] = np.empty(0, dtype=np.float32)  # LightGBM holds its own copy
    boosters, grown = [], []
    for member in members:
        params = {**member.params.lightgbm_params(constraints), "feature_pre_filter": False}
        booster = boost_rounds(train, params, member.rounds)
        boosters.append(booster)
        grown.append(replace(member, rounds=booster.num_trees()))
    merged = merge_models(boosters, [m.weight for m in members])
    merged.best_iteration = merged.current_iteration()
    return merged, grown


def seeded(members: Sequence[Member], seeds: int) -> list[Member]:
    """Each member repeated with ``seeds`` bagging/feature seeds, its weight shared among them."""
    out = []
    for member in members:
        for s in range(seeds):
            params = replace(member.params, seed=member.params.seed + 1_000 * s)
            out.append(Member(params, member.rounds, member.weight / seeds))
    return out
