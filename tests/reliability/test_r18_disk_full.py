"""R18: a disk that fills up during a bundle or dataset write.

A 1 MiB tmpfs is mounted for the test when the user may mount (root here and in CI); otherwise,
and in a second test always, the write runs in a subprocess under ``RLIMIT_FSIZE`` (the same
failure, EFBIG instead of ENOSPC). Pass figure: every failed write raises ``StorageError``
naming the target and the reason; the previous bundle version still verifies and loads; the
registry gets no version and the run is marked FAILED; 0 staging or temp files left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import StorageError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry

pytestmark = pytest.mark.reliability
SIZE = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A 1 MiB tmpfs (or, where mounting is not allowed, a plain directory and 'rlimit')."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", f"r18-{uuid.uuid4().hex[:6]}", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"R18: cannot mount a tmpfs ({done.stderr.decode().strip()}); using RLIMIT_FSIZE")
        yield mount, "rlimit"
        return
    try:
        yield mount, "tmpfs"
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _fill_disk(mount: Path, *, leave: int) -> None:
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    (mount / "filler.bin").write_bytes(b"\0" * max(free - leave, 0))


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


WRITE_UNDER_LIMIT = """
import resource, signal, sys
from pathlib import Path
from churnscale.exceptions import StorageError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
what, target = sys.argv[1], Path(sys.argv[2])
try:
    if what == "bundle":
        from churnscale.model.lightgbm import LightGBMModel
        LightGBMModel.load(Path(sys.argv[4])).save(target)
    else:
        from churnscale.data.schema import SchemaHints
        from churnscale.data.store import ingest
        ingest(sys.argv[4], target, hints=SchemaHints(target="churned"))
except StorageError as exc:
    print(f"StorageError: {exc}")
    sys.exit(3)
"""


def _write_under_limit(what: str, target: Path, source: Path, limit: int) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WRITE_UNDER_LIMIT, what, str(target), str(limit), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.strip()


def test_disk_full_during_bundle_publish(
    small_disk: tuple[Path, str], rel_bundle: Path, rel_settings: Settings
) -> None:
    mount, how = small_disk
    model = LightGBMModel.load(rel_bundle)
    model.save(mount / "churn" / "1")
    registry = Registry(rel_settings)
    if how == "tmpfs":
        _fill_disk(mount, leave=20_000)
        with (
            pytest.raises(StorageError, match=r"churn/2: write failed \(No space left on device\)"),
            registry.run(experiment="churn") as run,
        ):
            model.save(mount / "churn" / "2")
            run.register_bundle(mount / "churn" / "2", name="churn")
        (mount / "filler.bin").unlink()
        assert registry.run_status(run.run_id) == "FAILED"
        message = "tmpfs ENOSPC"
    else:
        message = _write_under_limit("bundle", mount / "churn" / "2", rel_bundle, 20_000)
        assert "write failed" in message
    assert not (mount / "churn" / "2").exists()
    assert _leftovers(mount / "churn") == []
    verify_directory(mount / "churn" / "1")
    LightGBMModel.load(mount / "churn" / "1")
    assert registry.list_models() == []
    print(f"R18 bundle ({how}): refused with {message}")


def test_disk_full_during_dataset_ingest(small_disk: tuple[Path, str], tmp_path: Path) -> None:
    mount, how = small_disk
    source = tmp_path / "raw.parquet"
    write_batches(generate_table(30_000, 4).to_batches(), source)
    if how == "tmpfs":
        _fill_disk(mount, leave=100_000)
        with pytest.raises(StorageError, match=r"/ds: write failed \(.*No space left on device\)"):
            ingest(str(source), mount / "ds", hints=SchemaHints(target="churned"))
        (mount / "filler.bin").unlink()
    else:
        _write_under_limit("dataset", mount / "ds", source, 200_000)
    assert not (mount / "ds").exists()
    assert list(mount.iterdir()) == []


def test_file_size_limit_during_bundle_publish(rel_bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(rel_bundle, root / "1")
    message = _write_under_limit("bundle", root / "2", rel_bundle, 10_000)
    assert "File too large" in message and str(root / "2") in message
    assert sorted(p.name for p in root.iterdir()) == ["1"]
    verify_directory(root / "1")


def test_publish_error_is_one_clear_line(tmp_path: Path) -> None:
    def fill(staging: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(StorageError) as caught:
        publish_directory(tmp_path / "b", fill)
    assert (
        str(caught.value) == f"{tmp_path / 'b'}: write failed (No space left on device); "
        "nothing was published"
    )
    assert list(tmp_path.iterdir()) == []
