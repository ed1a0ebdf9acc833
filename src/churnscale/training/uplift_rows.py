"""An experiment's stored rows for uplift training, read one row group at a time.

:func:`read_arm_rows` reads only the arm and outcome columns (one pass) and keeps, per Parquet
row group, each row's arm (1 treated, 0 control, -1 another arm: left out and counted), outcome
and side: a few bytes a row. The learners then read their rows through the binary model's
out-of-core path (:class:`~churnscale.training.sequence.SideSequence`): :class:`StoredRows`
hands LightGBM the encoded rows of one side and arm as a ``lightgbm.Sequence`` (the S-learner's
arm column appended by :class:`ArmColumn`), so peak memory is LightGBM's binned data plus a row
group, as for the binary model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.uplift import UpliftModel
from churnscale.training.plan import TRAIN, UNUSED, RowGroup, SplitPlan
from churnscale.training.sequence import SideSequence, iter_side_tables

#: The arm of a row of neither the treatment nor the control arm.
OTHER_ARM = -1


@dataclass
class ArmRows:
    """Every stored row's side (``sides``), outcome (``labels``) and arm, by row group."""

    groups: list[RowGroup]
    arms: list[np.ndarray]
    #: Rows left out, by their other treatment value.
    dropped: dict[str, int]

    def _masks(self, side: int | None, arm: int | None) -> list[np.ndarray]:
        masks = []
        for group, arms in zip(self.groups, self.arms, strict=True):
            mask = arms != OTHER_ARM if arm is None else arms == arm
            masks.append(mask if side is None else mask & (group.sides == side))
        return masks

    def values(self, side: int | None, arm: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Arm and outcome (int8) of the rows on ``side`` (of ``arm``), in storage order."""
        masks = self._masks(side, arm)
        arms = [a[m] for a, m in zip(self.arms, masks, strict=True)]
        labels = [g.labels[m] for g, m in zip(self.groups, masks, strict=True)]
        empty = np.empty(0, dtype=np.int8)
        return np.concatenate([empty, *arms]), np.concatenate([empty, *labels])

    def assign(self, sides: np.ndarray) -> None:
        """Give the two arms' rows (in storage order) their ``sides``."""
        at = 0
        for group, mask in zip(self.groups, self._masks(None, None), strict=True):
            count = int(mask.sum())
            given = group.sides  # a copy: the group packs side and label in one byte
            given[mask] = sides[at : at + count]
            group.sides = given
            at += count

    def within(self, side: int, sides: np.ndarray) -> ArmRows:
        """These rows with the ones on ``side`` given new ``sides`` and all others UNUSED
        (cross-validation folds inside the training side)."""
        groups = [
            RowGroup.of(g.file, g.index, np.full(g.packed.size, UNUSED, dtype=np.int8), g.labels)
            for g in self.groups
        ]
        inner = ArmRows(groups, self.arms, self.dropped)
        at = 0
        for group, mask in zip(groups, self._masks(side, None), strict=True):
            count = int(mask.sum())
            given = group.sides
            given[mask] = sides[at : at + count]
            group.sides = given
            at += count
        return inner

    def plan(self, side: int | None, arm: int | None = None) -> SplitPlan:
        """A plan whose TRAIN side is the rows on ``side`` (of ``arm``; None: every kept row)."""
        return SplitPlan(
            [
                RowGroup.of(g.file, g.index, np.where(m, TRAIN, UNUSED).astype(np.int8), g.labels)
                for g, m in zip(self.groups, self._masks(side, arm), strict=True)
            ]
        )


def _arm_codes(column: pa.ChunkedArray, treatment: str, control: str) -> tuple[np.ndarray, Any]:
    values = np.asarray(pc.cast(column, pa.string()).to_numpy(zero_copy_only=False)).astype(str)
    arms = np.full(values.size, OTHER_ARM, dtype=np.int8)
    arms[values == treatment] = 1
    arms[values == control] = 0
    return arms, values


def read_arm_rows(dataset: Path, *, treatment_col: str, treatment: str, control: str) -> ArmRows:
    """Arm and outcome of every stored row (one pass over two columns); every kept row TRAIN."""
    schema, info = load_info(dataset)
    if schema.target is None:
        raise ConfigError("--target", expected="the outcome column", received=None)
    groups: list[RowGroup] = []
    arms: list[np.ndarray] = []
    found: dict[str, int] = {}
    for name in info.files:
        parquet = pq.ParquetFile(dataset / name)
        for index in range(parquet.num_row_groups):
            table = parquet.read_row_group(index, columns=[treatment_col, schema.target])
            codes, values = _arm_codes(table.column(treatment_col), treatment, control)
            for value, count in zip(*np.unique(values, return_counts=True), strict=True):
                found[str(value)] = found.get(str(value), 0) + int(count)
            y = table.column(schema.target).to_numpy()[codes != OTHER_ARM].astype(float)
            if np.isnan(y).any():
                raise TrainingError(f"the outcome {schema.target} has missing values")
            labels = np.zeros(codes.size, dtype=np.int8)
            labels[codes != OTHER_ARM] = y
            sides = np.where(codes != OTHER_ARM, TRAIN, UNUSED).astype(np.int8)
            groups.append(RowGroup.of(dataset / name, index, sides, labels))
            arms.append(codes)
    for flag, value in (("--treatment", treatment), ("--control", control)):
        if value not in found:
            raise ConfigError(
                flag, expected=f"a value of {treatment_col}: {sorted(found)}", received=value
            )
    dropped = {v: n for v, n in sorted(found.items()) if v not in (treatment, control)}
    return ArmRows(groups, arms, dropped)


class ArmColumn(lgb.Sequence):  # type: ignore[misc]
    """Encoded rows with the arm (1.0 treated, 0.0 control) as a last column: the S-learner's
    input, built one row group at a time."""

    def __init__(self, rows: SideSequence, arm: np.ndarray) -> None:
        self.rows = rows
        self.arm = np.asarray(arm, dtype=np.int8)  # a byte a row; float64 once joined
        self.batch_size = rows.batch_size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int | slice | list[int]) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, _ = index.indices(len(self))
            return np.hstack([self.rows[index], self.arm[start:stop, None]])
        if isinstance(index, list):
            return np.stack([self[i] for i in index])
        return np.append(self.rows[index], np.float64(self.arm[index]))


@dataclass(frozen=True)
class StoredRows:
    """The rows on one side of :class:`ArmRows`, streamed from storage to the learners."""

    rows: ArmRows
    side: int
    preprocessor: Preprocessor

    def _sequence(self, arm: int | None) -> SideSequence:
        return SideSequence(self.rows.plan(self.side, arm), TRAIN, self.preprocessor)

    def arm(self) -> np.ndarray:
        return self.rows.values(self.side)[0]

    def outcome(self, arm: int | None) -> np.ndarray:
        return self.rows.values(self.side, arm)[1]

    def dataset(
        self, arm: int | None, label: np.ndarray, *, with_arm: bool, params: dict[str, Any]
    ) -> lgb.Dataset:
        sequence = self._sequence(arm)
        source = ArmColumn(sequence, self.rows.values(self.side, arm)[0]) if with_arm else sequence
        dataset = lgb.Dataset(
            [source],
            label=label,
            categorical_feature=self.preprocessor.categorical_indices or "auto",
            params=params,
            free_raw_data=True,
        )  # bins come from a sample of rows: encode only those for it
        sequence.expect_sample(dataset._create_sample_indices(total_nrow=len(sequence)))
        return dataset

    def predict(self, booster: lgb.Booster, arm: int | None) -> np.ndarray:
        parts = [booster.predict(m) for m in self._sequence(arm).iter_matrices()]
        return np.concatenate([np.empty(0), *parts])


def uplift_of_side(model: UpliftModel, rows: ArmRows, side: int) -> np.ndarray:
    """The model's uplift for every kept row on ``side``, in storage order."""
    sequence = SideSequence(rows.plan(side), TRAIN, model.preprocessor)
    return np.concatenate([np.empty(0), *map(model.uplift_matrix, sequence.iter_matrices())])


def side_tables(rows: ArmRows, side: int | None, schema: Schema) -> Iterator[pa.Table]:
    """The raw feature columns of the kept rows on ``side``, one row group at a time."""
    return iter_side_tables(rows.plan(side), TRAIN, [c.name for c in schema.features])
