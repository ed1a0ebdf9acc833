"""R15: a Dask worker SIGKILLed while a CSV is converted to Parquet on the cluster.

The stored-dataset ``ingest`` streams on one machine; on a cluster a CSV is read in blocks by
``dask.dataframe.read_csv`` (as text), each block is conformed on a worker with the same
``conform`` and written by ``to_parquet``. The cluster keeps Dask's task retries (unlike
training's ``local:N``), so a killed worker's blocks are redone by its restarted replacement.

Pass figure: the run with a worker killed mid-way stores the same row count and the same
content fingerprint (``data/fingerprint.py``) as a clean run, and as the streamed ``ingest``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from churnscale.data.conform import conform
from churnscale.data.dask_io import to_pandas
from churnscale.data.fingerprint import Fingerprint
from churnscale.data.schema import Schema, SchemaHints
from churnscale.data.store import ingest, load_info
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.integration]
ROWS = 60_000


def _conform_block(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """One CSV block (all text) conformed on a worker; a little slow, so a kill lands mid-run."""
    time.sleep(0.1)
    spec = Schema.from_dict(schema)
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    typed, rejects = conform(batch, spec, source="csv", lines=np.arange(batch.num_rows))
    assert not rejects, rejects[0]
    return to_pandas(pa.Table.from_batches([typed], schema=spec.arrow_schema()))


def dask_ingest(client: Client, csv: Path, out: Path, schema: Schema) -> None:
    """CSV → conformed Parquet parts on the cluster."""
    text = dd.read_csv(str(csv), blocksize=200_000, dtype=str, keep_default_na=False)
    meta = to_pandas(pa.Table.from_batches([], schema=schema.arrow_schema()))
    typed = text.map_partitions(_conform_block, schema.to_dict(), meta=meta)
    client.compute(typed.to_parquet(str(out), write_index=False, compute=False)).result()


def fingerprint(out: Path, schema: Schema) -> tuple[int, str]:
    found = Fingerprint()
    for part in sorted(out.glob("*.parquet")):
        found.update(pq.read_table(part).select(schema.names).cast(schema.arrow_schema()))
    return found.rows, found.hexdigest(schema)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Schema, tuple[int, str]]:
    root = tmp_path_factory.mktemp("r15")
    write_batches(generate_table(ROWS, 8).to_batches(), root / "customers.csv", fmt="csv")
    schema, _ = ingest(
        str(root / "customers.csv"), root / "streamed", hints=SchemaHints(target="churned")
    )
    _, stored = load_info(root / "streamed")
    return root / "customers.csv", schema, (stored.rows, stored.fingerprint)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0", memory_limit="1GiB",
    )  # fmt: skip
    with cluster, Client(cluster) as c:
        yield c


def _kill_midway(client: Client, pid: int, killed: list[int]) -> None:
    while True:
        if any("conform_block" in str(k) for keys in client.processing().values() for k in keys):
            time.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def test_killed_worker_changes_nothing_in_the_output(
    source: tuple[Path, Schema, tuple[int, str]], client: Client, tmp_path: Path
) -> None:
    csv, schema, streamed = source
    dask_ingest(client, csv, tmp_path / "clean", schema)
    clean = fingerprint(tmp_path / "clean", schema)
    pids = client.run(os.getpid)
    killed: list[int] = []
    killer = threading.Thread(
        target=_kill_midway, args=(client, pids[sorted(pids)[1]], killed), daemon=True
    )
    killer.start()
    dask_ingest(client, csv, tmp_path / "killed", schema)
    killer.join(timeout=10)
    after_kill = fingerprint(tmp_path / "killed", schema)
    parts = len(list((tmp_path / "killed").glob("*.parquet")))
    print(f"R15: killed pid {killed}; rows/fingerprint clean {clean}, killed {after_kill}, "
          f"streamed ingest {streamed}; {parts} parts")  # fmt: skip
    assert killed, "the worker was not killed during the run"
    assert after_kill == clean
    assert clean[0] == ROWS
    assert clean == streamed
