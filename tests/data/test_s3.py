"""Ingest from ``s3://`` against a real moto S3 server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.writers import write_batches
from churnscale.exceptions import SourceError

pytestmark = pytest.mark.integration

CLI = (sys.executable, "-m", "churnscale")
BUCKET = "churn"
PARTS = 3
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def local_files(tmp_path_factory: pytest.TempPathFactory, small_table: pa.Table) -> Path:
    """The same rows as CSV, as Parquet, and as a directory of three CSV parts."""
    root = tmp_path_factory.mktemp("s3src")
    write_batches(small_table.to_batches(), root / "data.csv", fmt="csv")
    write_batches(small_table.to_batches(), root / "data.parquet")
    step = -(-small_table.num_rows // PARTS)
    for i in range(PARTS):
        part = small_table.slice(i * step, step)
        write_batches(part.to_batches(), root / "parts" / f"part-{i}.csv", fmt="csv")
    (root / "parts" / "_SUCCESS").write_text("")  # a marker that is not data
    return root


@pytest.fixture(scope="module")
def s3_endpoint(local_files: Path) -> Iterator[str]:
    """A moto S3 server with the local files uploaded; the env points churnscale at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**DUMMY_AWS, "CHURNSCALE_S3_ENDPOINT_URL": endpoint}.items():
            patch.setenv(key, value)
        _upload(endpoint, local_files)
        yield endpoint
    server.stop()


def _upload(endpoint: str, root: Path) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, path.relative_to(root).as_posix())


def _options() -> dict[str, Any]:
    return dict(Settings().storage_options())


def _local_fingerprint(source: Path, out: Path) -> str:
    _, info = ingest(str(source), out, hints=SchemaHints(target="churned"))
    return info.fingerprint


@pytest.mark.parametrize("name", ["data.csv", "data.parquet"])
def test_ingest_one_s3_file_equals_local(
    s3_endpoint: str, local_files: Path, small_table: pa.Table, tmp_path: Path, name: str
) -> None:
    _, info = ingest(
        f"s3://{BUCKET}/{name}",
        tmp_path / "remote",
        hints=SchemaHints(target="churned"),
        storage_options=_options(),
    )
    assert info.rows == small_table.num_rows and info.rejected == 0
    assert info.sources == [f"s3://{BUCKET}/{name}"]
    assert info.fingerprint == _local_fingerprint(local_files / name, tmp_path / "local")


@pytest.mark.parametrize("pattern", ["parts", "parts/", "parts/*.csv"])
def test_ingest_s3_prefix_of_parts_equals_local(
    s3_endpoint: str, local_files: Path, small_table: pa.Table, tmp_path: Path, pattern: str
) -> None:
    _, info = ingest(
        f"s3://{BUCKET}/{pattern}",
        tmp_path / "remote",
        hints=SchemaHints(target="churned"),
        storage_options=_options(),
    )
    assert info.rows == small_table.num_rows
    assert info.fingerprint == _local_fingerprint(local_files / "parts", tmp_path / "local")


def test_cli_ingests_s3_path(s3_endpoint: str, local_files: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    done = subprocess.run(
        [*CLI, "ingest", f"s3://{BUCKET}/data.csv", "--out", str(out), "--target", "churned"],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "dataset.json").read_text())
    assert info["fingerprint"] == _local_fingerprint(local_files / "data.csv", tmp_path / "local")
    assert info["fingerprint"] in done.stderr


def test_missing_s3_key_is_a_clear_error(s3_endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=rf"s3://{BUCKET}/absent\.csv: no such file"):
        ingest(f"s3://{BUCKET}/absent.csv", tmp_path / "ds", storage_options=_options())


def test_missing_credentials_are_a_clear_error(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in DUMMY_AWS:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    fresh = {**_options(), "skip_instance_cache": True}
    with pytest.raises(SourceError, match=r"cannot list: NoCredentialsError"):
        ingest(f"s3://{BUCKET}/data.csv", tmp_path / "ds", storage_options=fresh)


def test_cli_missing_bucket_is_one_line(s3_endpoint: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "ingest", "s3://no-such-bucket/x.csv", "--out", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: s3://no-such-bucket/x.csv:"), done.stderr
    assert "Traceback" not in done.stderr


def test_dask_reads_s3_parquet(s3_endpoint: str, small_table: pa.Table, tmp_path: Path) -> None:
    from churnscale.data.dask_io import to_dask

    schema, _ = ingest(
        f"s3://{BUCKET}/data.parquet",
        tmp_path / "ds",
        hints=SchemaHints(target="churned"),
        storage_options=_options(),
    )
    ddf = to_dask(f"s3://{BUCKET}/data.parquet", schema=schema, storage_options=_options())
    remote = ddf[["monthly_charges", "churned"]].sum().compute(scheduler="sync")
    local = to_dask(tmp_path / "ds")[["monthly_charges", "churned"]].sum().compute(scheduler="sync")
    assert len(ddf) == small_table.num_rows
    assert remote.to_dict() == pytest.approx(local.to_dict(), rel=1e-12)
