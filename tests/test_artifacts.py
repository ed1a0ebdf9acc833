from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnscale.artifacts import (
    MANIFEST,
    publish_directory,
    replaced_on_success,
    verify_directory,
    write_atomically,
)
from churnscale.exceptions import IntegrityError


def _publish(target: Path) -> None:
    def fill(staging: Path) -> None:
        (staging / "model.txt").write_text("tree\n" * 100)
        (staging / "sub").mkdir()
        (staging / "sub" / "meta.json").write_text('{"a": 1}')

    publish_directory(target, fill)


def test_publish_then_verify(tmp_path: Path) -> None:
    _publish(tmp_path / "b")
    manifest = verify_directory(tmp_path / "b")
    assert set(manifest["files"]) == {"model.txt", "sub/meta.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: (d / "model.txt").write_text("tree\n" * 99 + "trex\n"), "SHA-256"),
        (lambda d: (d / "model.txt").write_text("tree\n"), "size"),
        (lambda d: (d / "sub" / "meta.json").unlink(), "files missing"),
        (lambda d: (d / "extra.bin").write_bytes(b"x"), "not in manifest"),
        (
            lambda d: (d / MANIFEST).write_text(
                json.dumps({**json.loads((d / MANIFEST).read_text()), "version": 9})
            ),
            "edited",
        ),
        (lambda d: (d / MANIFEST).unlink(), "no manifest.json"),
    ],
)
def test_tampering_is_refused(tmp_path: Path, mutate: object, message: str) -> None:
    _publish(tmp_path / "b")
    assert callable(mutate)
    mutate(tmp_path / "b")
    with pytest.raises(IntegrityError, match=message):
        verify_directory(tmp_path / "b")


def test_failed_publish_leaves_nothing_and_never_overwrites(tmp_path: Path) -> None:
    def broken(staging: Path) -> None:
        (staging / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish_directory(tmp_path / "b", broken)
    assert list(tmp_path.iterdir()) == []
    _publish(tmp_path / "b")
    with pytest.raises(IntegrityError, match="already exists"):
        _publish(tmp_path / "b")


@pytest.mark.parametrize("durable", [False, True])
def test_a_file_is_replaced_whole(tmp_path: Path, durable: bool) -> None:
    path = tmp_path / "deep" / "report.html"
    write_atomically(path, "old", durable=durable)
    write_atomically(path, b"new", durable=durable)
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "scores.parquet"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="cut short"), replaced_on_success(path) as partial:
        partial.write_text("half")
        raise RuntimeError("cut short")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]
