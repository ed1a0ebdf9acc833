"""R17: byte flips in a stored dataset's Parquet parts (written with page checksums).

Pass figure: of 100 single-byte flips at random offsets of a stored part, 100% are detected
when the dataset is read (``iter_dataset`` checks the part's SHA-256 recorded in
``dataset.json``, then Parquet's page checksums, and raises a ``SourceError`` naming the part),
and 0 are read back as silently wrong values. The cluster path (``to_dask``, row group by row
group, page checksums only) is measured on the same flips: 0 silently wrong values, each
detected flip named by file.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from rel_support import make_dataset

from churnscale.data.dask_io import to_dask
from churnscale.data.store import iter_dataset, load_info
from churnscale.exceptions import SourceError

pytestmark = pytest.mark.reliability
FLIPS = 100


def _read(dataset: Path) -> pa.Table:
    return pa.Table.from_batches(list(iter_dataset(dataset)))


def test_every_byte_flip_is_detected(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "src", 20_000)
    _, info = load_info(dataset)
    original = _read(dataset)
    original_frame = to_dask(dataset).compute(scheduler="sync")
    on_dask: Counter[str] = Counter()
    part = info.files[0]
    size = (dataset / part).stat().st_size
    rng = np.random.default_rng(17)
    outcomes: Counter[str] = Counter()
    silent: list[int] = []
    for offset in rng.choice(size, FLIPS, replace=False).tolist():
        copy = tmp_path / f"flip-{offset}"
        shutil.copytree(dataset, copy)
        data = bytearray((copy / part).read_bytes())
        data[offset] ^= 1 << int(rng.integers(8))
        (copy / part).write_bytes(bytes(data))
        try:
            table = _read(copy)
        except SourceError as exc:
            assert str(copy / part) in str(exc)
            outcomes["detected"] += 1
        else:
            if table.equals(original) and table.schema.equals(original.schema, check_metadata=True):
                outcomes["no effect"] += 1
            else:
                outcomes["silently wrong"] += 1
                silent.append(offset)
        try:
            frame = to_dask(copy).compute(scheduler="sync")
        except SourceError as exc:
            assert str(copy / part) in str(exc)
            on_dask["detected"] += 1
        else:
            same = frame.reset_index(drop=True).equals(original_frame.reset_index(drop=True))
            on_dask["no effect" if same else "silently wrong"] += 1
        shutil.rmtree(copy)
    print(f"R17: {FLIPS} flips in a {size:,}-byte part: {dict(outcomes)}; silent at {silent}")
    print(f"R17 Dask path (page checksums only): {dict(on_dask)}")
    assert outcomes["silently wrong"] == 0
    assert outcomes["detected"] == FLIPS
    assert on_dask["silently wrong"] == 0
