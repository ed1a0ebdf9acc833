"""Checkpoints: signed, atomic, and never unpickled before the signature checks out."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from churnscale.exceptions import ConfigError, IntegrityError
from churnscale.online.checkpoint import (
    MAC_BYTES,
    MAGIC,
    Checkpoint,
    CheckpointStore,
    decode_checkpoint,
    encode_checkpoint,
)

KEY = "test-checkpoint-key-0123456789"


class _Trap:
    """Unpickling this runs ``os.mkdir(path)``: proof that a payload was (not) loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def test_round_trip_keeps_header_and_state(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "m.ckpt", KEY)
    assert store.load() is None
    store.save(Checkpoint({"offset": ["a.parquet", 3], "events": 9}, {"w": [1.5]}))
    loaded = store.load()
    assert loaded is not None
    assert loaded.header == {"offset": ["a.parquet", 3], "events": 9}
    assert loaded.estimator == {"w": [1.5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt"]  # no temporary file left


@pytest.mark.parametrize("where", ["mac", "header", "pickle"])
def test_a_tampered_checkpoint_is_refused(tmp_path: Path, where: str) -> None:
    data = bytearray(encode_checkpoint(Checkpoint({"offset": 7}, [1.0, 2.0]), KEY.encode()))
    position = {"mac": len(MAGIC) + 3, "header": len(MAGIC) + MAC_BYTES + 10, "pickle": -3}[where]
    data[position] ^= 0x01
    path = tmp_path / "m.ckpt"
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="signature does not match"):
        CheckpointStore(path, KEY).load()


def test_a_forged_pickle_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    honest = encode_checkpoint(Checkpoint({"offset": 1}, None), KEY.encode())
    header_end = (
        len(MAGIC)
        + MAC_BYTES
        + 8
        + int.from_bytes(honest[len(MAGIC) + MAC_BYTES : len(MAGIC) + MAC_BYTES + 8], "big")
    )
    forged = honest[:header_end] + pickle.dumps(_Trap(str(marker)))
    with pytest.raises(IntegrityError, match="signature"):
        decode_checkpoint(forged, KEY.encode(), path="m.ckpt")
    assert not marker.exists()


def test_another_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    CheckpointStore(path, KEY).save(Checkpoint({"offset": 1}, None))
    with pytest.raises(IntegrityError, match="another key"):
        CheckpointStore(path, "a-different-key-of-32-bytes-long").load()


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    path.write_bytes(b"\x80\x05N.")
    with pytest.raises(IntegrityError, match="not a churnscale online checkpoint"):
        CheckpointStore(path, KEY).load()


@pytest.mark.parametrize("key", [None, "short"])
def test_a_missing_or_short_key_is_refused(tmp_path: Path, key: str | None) -> None:
    with pytest.raises(ConfigError, match="CHURNSCALE_ONLINE_CHECKPOINT_KEY"):
        CheckpointStore(tmp_path / "m.ckpt", key)
