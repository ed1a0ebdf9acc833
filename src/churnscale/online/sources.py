"""Where labelled records come from: one small interface and its file-based implementations.

A :class:`RecordSource` yields ``(offset, payload)`` entries in a fixed order, starting after a
given offset. It commits nothing: the learner stores the offset of the last entry it learned
inside its own checkpoint, and a restarted learner asks the source to start after it. That is
what makes learning exactly-once, and it is all a new transport needs to offer: a Kafka consumer
would yield ``(partition, offset)`` pairs, read with ``enable.auto.commit`` off and
``seek`` to the checkpointed offset on start.

Offsets are JSON values (an int, a string, or a ``[file, row]`` list) so that a checkpoint can
hold them. JSON sources yield each payload's text undecoded: the learner parses a block of
them at once (:mod:`churnscale.online.jsonblock`) and decodes one by one only a block that
holds a bad payload, which it quarantines with its offset; nothing is skipped. In follow mode
a source yields ``None`` when nothing new arrived for a while (the learner flushes and
checkpoints then).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.exceptions import SourceError

#: A position in a stream: line number, entry id, stream sequence or ``[file, row]``.
Offset = int | str | list[Any]
#: One decoded record (field name → JSON value).
Record = dict[str, Any]


@dataclass(frozen=True)
class Undecodable:
    """A payload that is not a JSON object: kept with the reason, for the quarantine."""

    reason: str
    raw: str


#: One entry's content: a record, a JSON text still to decode, or a payload that is unreadable.
Payload = Record | bytes | Undecodable
#: What a source yields: one labelled record at its offset (``None`` is an idle tick in follow
#: mode). Not a customer's activity event (:mod:`churnscale.features.eventlog`).
Entry = tuple[Offset, Payload]


@runtime_checkable
class RecordSource(Protocol):
    """A replayable, ordered stream of labelled records."""

    kind: str
    identity: str

    def read(self, after: Offset | None) -> Iterator[Entry | None]:
        """Entries after ``after`` (all when None), in order; ``None`` is an idle tick."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def decode_json(raw: bytes | str) -> Record | Undecodable:
    """A JSON object, or the reason it is not one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Undecodable(f"invalid JSON: {exc}", _preview(raw))
    if not isinstance(value, dict):
        return Undecodable(f"expected a JSON object, got {type(value).__name__}", _preview(raw))
    return value


def decode_payload(payload: Payload) -> Record | Undecodable:
    """The record a payload holds (a JSON text is decoded), or why it has none."""
    return decode_json(payload) if isinstance(payload, bytes) else payload


def _preview(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text.strip()[:200]


class JsonLinesSource:
    """A JSON Lines file or standard input; the offset is the 1-based line number.

    With ``follow`` the file is read as it grows (like ``tail -f``); a last line without its
    newline is left until the writer finishes it. Blank lines advance the offset silently.
    """

    kind = "jsonl"

    def __init__(self, path: Path | None, *, follow: bool = False, poll: float = 0.2) -> None:
        self.path = path
        self.follow = follow
        self.poll = poll
        self.identity = "-" if path is None else str(path.resolve())
        self._handle: IO[bytes] | None = None

    def read(self, after: Offset | None) -> Iterator[Entry | None]:
        """Lines after line ``after``."""
        skip = _int_offset(after, self.kind)
        handle = self._open()
        line_no = 0
        pending = b""
        while True:
            raw = handle.readline()
            if raw and not raw.endswith(b"\n") and self.follow:
                pending += raw  # a line still being written: wait for the rest
                continue
            if not raw:
                if not self.follow:
                    return
                yield None
                time.sleep(self.poll)
                continue
            raw, pending = pending + raw, b""
            line_no += 1
            if line_no <= skip or not raw.strip():
                continue
            yield line_no, raw.rstrip(b"\r\n")

    def _open(self) -> IO[bytes]:
        if self.path is None:
            return sys.stdin.buffer
        try:
            self._handle = self.path.open("rb")
        except OSError as exc:
            raise SourceError(str(self.path), exc.strerror or "cannot open") from exc
        return self._handle

    def close(self) -> None:
        """Close the file (standard input stays open)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _int_offset(after: Offset | None, kind: str) -> int:
    if after is None:
        return 0
    if not isinstance(after, int) or after < 0:
        raise SourceError(kind, f"offset must be a line or sequence number, got {after!r}")
    return after


class ParquetDirectorySource:
    """Parquet files arriving in a directory, read in name order; the offset is ``[file, row]``.

    Writers must name files so that name order is arrival order (a timestamp prefix) and move
    each finished file into place with a rename; hidden, ``_``-prefixed and non-``.parquet``
    names are ignored. With ``follow`` the directory is polled for new files.
    """

    kind = "parquet-dir"

    def __init__(
        self, directory: Path, *, follow: bool = False, poll: float = 0.5, batch_rows: int = 8_192
    ) -> None:
        if not directory.is_dir():
            raise SourceError(str(directory), "not a directory")
        self.directory = directory
        self.follow = follow
        self.poll = poll
        self.batch_rows = batch_rows
        self.identity = str(directory.resolve())

    def read(self, after: Offset | None) -> Iterator[Entry | None]:
        """Rows after ``[file, row]``, file by file."""
        last_file, last_row = _file_offset(after)
        while True:
            fresh = [f for f in self._files() if f > last_file or (f == last_file and last_row)]
            for name in fresh:
                skip = last_row if name == last_file else 0
                yield from self._rows(name, skip)
                last_file, last_row = name, 0
            if not self.follow:
                return
            yield None
            time.sleep(self.poll)

    def _files(self) -> list[str]:
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if p.suffix == ".parquet" and not p.name.startswith((".", "_")) and p.is_file()
        )

    def _rows(self, name: str, skip: int) -> Iterator[Entry]:
        path = self.directory / name
        try:
            parquet = pq.ParquetFile(path)
            row = 0
            for batch in parquet.iter_batches(batch_size=self.batch_rows):
                for record in _plain(batch).to_pylist():
                    row += 1
                    if row > skip:
                        yield [name, row], record
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceError(str(path), f"unreadable Parquet file: {exc}") from exc

    def close(self) -> None:
        """Nothing to release."""


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _file_offset(after: Offset | None) -> tuple[str, int]:
    if after is None:
        return "", 0
    if (
        isinstance(after, list)
        and len(after) == 2
        and isinstance(after[0], str)
        and isinstance(after[1], int)
    ):
        return after[0], after[1]
    raise SourceError("parquet-dir", f"offset must be [file, row], got {after!r}")
