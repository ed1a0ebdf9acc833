"""Signed, atomic checkpoints of an online learner: its state and its stream offset together.

The estimator (a River or scikit-learn object) can only be saved by pickling it, and unpickling
runs code, so a checkpoint is signed with HMAC-SHA256 under a configured key and nothing in it
is parsed, let alone unpickled, before the signature checks out (:func:`hmac.compare_digest`).
The key is the setting ``CHURNSCALE_ONLINE_CHECKPOINT_KEY``; where none is set,
:func:`stored_key` keeps a random one in the churnscale home (mode 0600), made on first use.

File layout: ``MAGIC`` · 32-byte HMAC · 8-byte header length · header (JSON) · pickle. The MAC
covers everything but itself. A checkpoint is written to a temporary file in the same
directory, fsynced, renamed over the old one and the directory fsynced, so after a crash the
file is either the old checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from churnscale.artifacts import write_atomically
from churnscale.exceptions import ConfigError, IntegrityError
from churnscale.unpickling import loads_authenticated

MAGIC = b"CHURNSCALE-ONLINE-CHECKPOINT/1\n"
MAC_BYTES = 32
MIN_KEY_BYTES = 16
#: The generated key's file in the churnscale home.
KEY_FILE = "online-checkpoint.key"


@dataclass
class Checkpoint:
    """What a learner needs to resume: JSON ``header`` (offset, counters, …) and its estimator."""

    header: dict[str, Any]
    estimator: Any


def check_key(key: str | bytes | None) -> bytes:
    """The signing key as bytes; refuses a missing or short key."""
    if key is None:
        raise ConfigError(
            "CHURNSCALE_ONLINE_CHECKPOINT_KEY",
            expected=f"a secret of at least {MIN_KEY_BYTES} bytes to sign checkpoints",
            received=None,
        )
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError(
            "CHURNSCALE_ONLINE_CHECKPOINT_KEY",
            expected=f"at least {MIN_KEY_BYTES} bytes",
            received=f"{len(raw)} bytes",
        )
    return raw


def stored_key(home: Path) -> tuple[bytes, bool]:
    """The key kept in ``home/online-checkpoint.key`` and whether this call created it.

    A missing file is created with 32 random bytes (hex) and mode 0600, complete or not at all
    (written aside, then linked into place, so two learners starting at once share one key). A
    file that others may read, or that holds a short key, is refused.
    """
    path = home / KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    created = False
    if not path.exists():
        staging = home / f".{KEY_FILE}.{os.getpid()}.tmp"
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staging, path)
            created = True
        except FileExistsError:
            pass  # another learner made it first: use theirs
        finally:
            staging.unlink()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            str(path), expected="a key file only its owner can read (chmod 600)", received=oct(mode)
        )
    return check_key(path.read_bytes().strip()), created


def encode_checkpoint(checkpoint: Checkpoint, key: bytes) -> bytes:
    """The signed bytes of ``checkpoint``."""
    header = orjson.dumps(checkpoint.header)
    body = len(header).to_bytes(8, "big") + header + pickle.dumps(checkpoint.estimator, 5)
    return MAGIC + _mac(key, body) + body


def decode_checkpoint(data: bytes, key: bytes, *, path: str) -> Checkpoint:
    """Verify the signature of ``data``, then (and only then) parse and unpickle it."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + MAC_BYTES + 8:
        raise IntegrityError(path, "not a churnscale online checkpoint")
    mac = data[len(MAGIC) : len(MAGIC) + MAC_BYTES]
    body = data[len(MAGIC) + MAC_BYTES :]
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise IntegrityError(
            path, "checkpoint signature does not match (tampered, or signed with another key)"
        )
    size = int.from_bytes(body[:8], "big")
    header = orjson.loads(body[8 : 8 + size])
    estimator = loads_authenticated(
        body[8 + size :], message=MAGIC + body, mac=mac, key=key, what=path
    )
    return Checkpoint(header, estimator)


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, MAGIC + body, hashlib.sha256).digest()


class CheckpointStore:
    """One checkpoint file, replaced atomically on every save."""

    def __init__(self, path: Path, key: str | bytes | None) -> None:
        self.path = path
        self.key = check_key(key)

    def exists(self) -> bool:
        """Whether a checkpoint has been written."""
        return self.path.exists()

    def load(self) -> Checkpoint | None:
        """The verified checkpoint, or None when there is none yet."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # a write cut short by a crash
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return decode_checkpoint(data, self.key, path=str(self.path))

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint atomically and durably."""
        write_atomically(self.path, encode_checkpoint(checkpoint, self.key), durable=True)
