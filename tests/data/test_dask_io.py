"""The Dask path on a real two-process LocalCluster equals the streamed read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from churnscale.data.dask_io import pandas_dtypes, to_dask
from churnscale.data.schema import Role, Schema, SchemaHints
from churnscale.data.store import ingest, iter_dataset
from churnscale.data.writers import write_batches
from churnscale.exceptions import SchemaError, SourceError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as dask_client,
    ):
        yield dask_client


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, small_table: pa.Table) -> Path:
    """The small table stored with many row groups (batches of 700 rows)."""
    root = tmp_path_factory.mktemp("dask")
    src = root / "src.parquet"
    write_batches(small_table.to_batches(), src)
    ingest(str(src), root / "ds", hints=SchemaHints(target="churned"), batch_rows=700)
    return root / "ds"


def _streamed(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(iter_dataset(path)))


def _numeric_sums(table: pa.Table, schema: Schema) -> dict[str, float]:
    names = [c.name for c in schema.columns if c.role in (Role.NUMERIC, Role.TARGET)]
    return {n: float(pc.sum(table.column(n).cast(pa.float64())).as_py() or 0.0) for n in names}


@pytest.mark.parametrize("npartitions", [1, 3, 11])
def test_counts_and_sums_equal_streamed_read_for_any_partitioning(
    client: object, dataset: Path, npartitions: int
) -> None:
    ddf = to_dask(dataset)
    assert ddf.npartitions > 1  # one per row group
    ddf = ddf.repartition(npartitions=npartitions)
    streamed = _streamed(dataset)
    schema = Schema.load(dataset / "schema.json")
    expected = _numeric_sums(streamed, schema)
    sums = ddf[list(expected)].sum().compute()
    assert len(ddf) == streamed.num_rows
    for name, value in expected.items():
        assert sums[name] == pytest.approx(value, rel=1e-12), name
    nulls = ddf.isna().sum().compute()
    assert {n: int(nulls[n]) for n in schema.names} == {
        n: streamed.column(n).null_count for n in schema.names
    }
    autopay = int(ddf["autopay"].sum().compute())
    assert autopay == pc.sum(streamed.column("autopay")).as_py()


def test_dtypes_follow_the_schema(client: object, dataset: Path) -> None:
    ddf = to_dask(dataset)
    schema = Schema.load(dataset / "schema.json")
    wanted = pandas_dtypes(schema)
    assert dict(ddf.dtypes.items()) == wanted
    assert dict(ddf.partitions[0].compute().dtypes.items()) == wanted
    assert wanted["churned"] == np.int8 and wanted["monthly_charges"] == np.float64
    assert str(wanted["autopay"]) == "boolean" and str(wanted["region"]) == "string"
    assert str(wanted["signup_date"]) == "datetime64[us]"


def test_parquet_source_is_conformed_on_workers(
    client: object, dataset: Path, small_table: pa.Table, tmp_path: Path
) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    for i, part in enumerate([small_table.slice(0, 2_000), small_table.slice(2_000)]):
        write_batches(part.to_batches(), src / f"p{i}.parquet")
    schema = Schema.load(dataset / "schema.json")
    ddf = to_dask(src, schema=schema)
    assert ddf.npartitions == 2
    stored = to_dask(dataset)
    sums = ddf[["monthly_charges", "churned"]].sum().compute()
    stored_sums = stored[["monthly_charges", "churned"]].sum().compute()
    assert sums.to_dict() == pytest.approx(stored_sums.to_dict(), rel=1e-12)
    assert dict(ddf.dtypes.items()) == pandas_dtypes(schema)


def test_column_selection(client: object, dataset: Path) -> None:
    ddf = to_dask(dataset, columns=["churned", "tenure_months"])
    assert list(ddf.columns) == ["tenure_months", "churned"]
    assert len(ddf.compute()) == 5_000
    with pytest.raises(SchemaError, match="unknown columns: nope"):
        to_dask(dataset, columns=["nope"])


def test_non_parquet_and_bad_values_are_refused(client: object, tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match=r"reads Parquet only; not Parquet: .*d\.csv"):
        to_dask(csv)
    raw = tmp_path / "bad.parquet"
    write_batches([pa.record_batch({"x": ["1.5", "oops", "2"]})], raw)
    numeric = Schema.from_dict({"columns": [{"name": "x", "role": "numeric"}]})
    with pytest.raises(SchemaError, match=r"bad\.parquet row 2: not a number \('oops'\)"):
        to_dask(raw, schema=numeric).compute()
