"""A/B routing: which model arm answers a customer, sticky across processes and restarts.

A customer id is hashed (BLAKE2b keyed by the experiment name, never Python's salted ``hash()``)
into one of ``buckets`` buckets; a table built once per configuration maps buckets to arms by
weighted rendezvous hashing. A bucket's arm depends on the arm *names*, not their order, and
changing one arm's weight moves only buckets to or from that arm. With 2**20 buckets an arm's
share of buckets is within ~0.05 percentage points of its weight.

>>> config = RoutingConfig.model_validate(
...     {"experiment": "spring", "arms": [{"name": "a", "model": "churn@champion", "weight": 1},
...                                       {"name": "b", "model": "churn/4", "weight": 1}]})
>>> assign_arm("customer-42", config) == assign_arm("customer-42", config)
True
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from churnscale.exceptions import ConfigError

NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"
_REGISTRY_REF = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[0-9]+))$"
)

ArmName = Annotated[str, Field(pattern=NAME_PATTERN)]
#: A model reference as text: a bundle path, NAME, NAME/VERSION or NAME@ALIAS (parsed later by
#: :func:`churnscale.registry.references.parse_reference`).
ReferenceText = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\s\x00]+$")]


@dataclass(frozen=True, slots=True)
class BucketTable:
    """The experiment's hash key and the arm name of every bucket."""

    key: bytes
    names: tuple[str, ...]
    arms: bytes  # arm index of each bucket


@dataclass(frozen=True, slots=True)
class ModelReference:
    """A parsed model reference: a registry alias, a registry version, or a bundle path."""

    kind: Literal["alias", "version", "path"]
    name: str
    alias: str | None = None
    version: int | None = None


def parse_model_reference(reference: str) -> ModelReference:
    """``churn@champion`` → alias, ``churn/3`` → version, anything else → bundle path.

    Write ``./churn/3`` to mean a directory that looks like a registry version.

    >>> parse_model_reference("churn/3")
    ModelReference(kind='version', name='churn', alias=None, version=3)
    """
    match = _REGISTRY_REF.match(reference)
    if match is None:
        return ModelReference("path", reference)
    if match["alias"] is not None:
        return ModelReference("alias", match["name"], alias=match["alias"])
    return ModelReference("version", match["name"], version=int(match["version"]))


class Arm(BaseModel):
    """One arm of an experiment: a model reference and its traffic weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ArmName
    model: ReferenceText
    weight: float = Field(ge=0.0, allow_inf_nan=False)


class RoutingConfig(BaseModel):
    """Arms with weights, an optional shadow model, and the experiment name used as hash salt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: ArmName = "default"
    arms: list[Arm] = Field(min_length=1, max_length=255)
    shadow: ReferenceText | None = None
    buckets: int = Field(default=2**20, ge=1, le=2**24)

    @model_validator(mode="after")
    def _check_arms(self) -> RoutingConfig:
        names = [arm.name for arm in self.arms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(duplicates)}")
        if sum(arm.weight for arm in self.arms) <= 0:
            raise ValueError("arm weights must sum to more than 0")
        return self

    def model_post_init(self, context: Any, /) -> None:
        _ = self.table  # build the bucket table once, at validation time

    @cached_property
    def table(self) -> BucketTable:
        """The compiled bucket → arm table (built once per configuration)."""
        names = tuple(arm.name for arm in self.arms)
        key = self.experiment.encode()
        weights = np.array([arm.weight for arm in self.arms], dtype=np.float64)
        indices = bucket_table(key, names, weights, buckets=self.buckets)
        return BucketTable(key=key, names=names, arms=indices.astype(np.uint8).tobytes())

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A validated copy with ``update`` applied (and its own bucket table)."""
        return self.model_validate({**self.model_dump(), **(update or {})})

    @classmethod
    def load(cls, path: Path) -> RoutingConfig:
        """Read a routing configuration from a YAML or JSON file; errors name file and field."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(path), expected="a readable file", received=str(exc)) from exc
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), expected="valid YAML or JSON", received=str(exc)) from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "routing") -> RoutingConfig:
        """Validate a parsed mapping; the first problem becomes a ConfigError naming its field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            raise ConfigError(
                f"{source}: {where}", expected=error["msg"], received=error.get("input")
            ) from None

    def arm_of_bucket(self, bucket: int) -> str:
        """The arm that owns ``bucket`` (0 ≤ bucket < buckets)."""
        return self.table.names[self.table.arms[bucket]]

    def model_of(self, arm: str) -> str:
        """The model reference of the named arm."""
        for candidate in self.arms:
            if candidate.name == arm:
                return candidate.model
        names = [candidate.name for candidate in self.arms]
        raise ConfigError("arm", expected=f"one of {names}", received=arm)


def bucket_of(customer_id: str, *, key: bytes, buckets: int) -> int:
    """Stable bucket of a customer id: BLAKE2b keyed by the experiment, modulo ``buckets``."""
    digest = hashlib.blake2b(customer_id.encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def assign_arm(customer_id: str, config: RoutingConfig) -> str:
    """The arm that serves ``customer_id``: the same in every process, run and restart."""
    table = config.table
    digest = hashlib.blake2b(customer_id.encode(), key=table.key, digest_size=8).digest()
    return table.names[table.arms[int.from_bytes(digest, "little") % len(table.arms)]]


def bucket_table(
    key: bytes, names: tuple[str, ...], weights: npt.NDArray[np.float64], *, buckets: int
) -> npt.NDArray[np.int64]:
    """Map each bucket to an arm index by weighted rendezvous hashing.

    Each (bucket, arm) pair scores ``-ln(u) / weight`` with ``u`` uniform from a hash of the
    experiment, arm name and bucket; the lowest score wins. An arm wins a bucket with probability
    weight / total, and changing one arm's weight leaves every other pair's score alone, so
    buckets move only to or from that arm.
    """
    best = np.full(buckets, np.inf)
    table = np.zeros(buckets, dtype=np.int64)
    for column, (name, weight) in enumerate(zip(names, weights, strict=True)):
        if weight <= 0:
            continue
        score = -np.log(_uniforms(key, name, buckets)) / weight
        wins = score < best
        best[wins] = score[wins]
        table[wins] = column
    return table


def _uniforms(key: bytes, name: str, buckets: int) -> npt.NDArray[np.float64]:
    """Uniforms in (0, 1) for each bucket of one arm (splitmix64 seeded by a keyed hash)."""
    seed = int.from_bytes(hashlib.blake2b(name.encode(), key=key, digest_size=8).digest(), "little")
    with np.errstate(over="ignore"):
        x = np.arange(buckets, dtype=np.uint64) + np.uint64(seed)
        x *= np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)
