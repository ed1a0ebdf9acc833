"""Deterministic, stateless splits: a row's side depends only on its id (or date) and the seed.

Hashing the customer id puts each customer on the same side whatever the batch, partition or
machine, so a split works on streams and clusters alike; since the hash is independent of the
label, each class is split in the same proportion in expectation (stratified by construction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from churnscale.exceptions import ConfigError

_HASH_PREFIX = "cs"  # hash keys are 16 bytes: a prefix, then the seed


def unit_hash(ids: pa.Array | pa.ChunkedArray, *, seed: int = 0) -> np.ndarray:
    """A float in [0, 1) per id, uniform and stable across runs and machines."""
    values = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    key = f"{_HASH_PREFIX}{seed % 10**14:014d}"
    hashed = pd.util.hash_array(values, hash_key=key, categorize=False)
    return np.asarray((hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53))


def holdout_mask(ids: pa.Array | pa.ChunkedArray, *, fraction: float, seed: int = 0) -> np.ndarray:
    """True for rows in the held-out (validation) side."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError("validation fraction", expected="a number in (0, 1)", received=fraction)
    return unit_hash(ids, seed=seed) < fraction


def fold_of(ids: pa.Array | pa.ChunkedArray, *, folds: int, seed: int = 0) -> np.ndarray:
    """The cross-validation fold (0..folds-1) of each row."""
    if folds < 2:
        raise ConfigError("--cv", expected="at least 2 folds", received=folds)
    return np.minimum((unit_hash(ids, seed=seed) * folds).astype(np.int64), folds - 1)


def time_holdout_mask(times: pa.Array | pa.ChunkedArray, *, cutoff: np.datetime64) -> np.ndarray:
    """True for rows at or after ``cutoff`` (out-of-time validation)."""
    values = np.asarray(times.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False))
    return np.asarray(values >= cutoff.astype("datetime64[us]"))
