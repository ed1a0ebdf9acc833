"""Parse CSV blocks straight into the schema's types, exactly as reading text and conforming would.

pyarrow parses each column as the type that lets :func:`~churnscale.data.conform.conform` finish
it without reading the value again:

- numeric columns as ``float64``: pyarrow reads a number with the same routine that ``conform``
  casts text with, and fails on anything that is not a plain number, a null token or an
  ``inf``/``nan`` spelling;
- categorical, boolean, datetime and target columns as dictionaries, so ``conform`` checks
  each distinct value once with its own rules (and the fingerprint hashes it once);
- id columns as text, as before.

A block whose numeric column holds a value pyarrow cannot read (text in a number, a null token
spelt with spaces) or reads as NaN (``nan`` and its variants, whose bits ``conform`` decides)
is parsed again with that column as text, so ``conform`` rejects or reads those values as it
always has; the column stays text for the rest of the file, so a column with many bad values
costs one extra parse, not one per block.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from churnscale.data.schema import NULL_TOKENS, Role, Schema

TEXT = pa.string()
CODES = pa.dictionary(pa.int32(), pa.string())
_ROLE_TYPES: dict[Role, pa.DataType] = {
    Role.ID: TEXT,
    Role.CATEGORICAL: CODES,
    Role.NUMERIC: pa.float64(),
    Role.BOOLEAN: CODES,
    Role.DATETIME: CODES,
    Role.TARGET: CODES,
}
_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): ")


def _spellings(token: str) -> list[str]:
    """Every upper/lower-case spelling of ``token`` (``na`` → ``na``, ``nA``, ``Na``, ``NA``)."""
    return ["".join(chars) for chars in itertools.product(*({c.lower(), c.upper()} for c in token))]


#: The values ``conform`` reads as null in a numeric column (``nan`` is a NaN there, not null).
NUMERIC_NULLS = sorted({s for token in NULL_TOKENS if token != "nan" for s in _spellings(token)})


@dataclass
class InvalidRow:
    """A row pyarrow could not split into the header's number of fields."""

    number: int  # 1-based among the parsed data's non-empty lines
    text: str


@dataclass
class TypedTable:
    """What one parse gave: the table and the rows pyarrow skipped for their width."""

    table: pa.Table
    invalid: list[InvalidRow] = field(default_factory=list)


class TypedParser:
    """Parses CSV bytes into ``schema``'s parse types; shared by the threads reading one file."""

    def __init__(self, schema: Schema, names: list[str], delimiter: str) -> None:
        roles = {c.name: c.role for c in schema.columns}
        self.names = names
        self.delimiter = delimiter
        self.include = [n for n in names if n in roles]
        self._types = {n: _ROLE_TYPES[roles[n]] for n in self.include}
        self._text: set[str] = set()
        self._lock = threading.Lock()

    def column_types(self) -> dict[str, pa.DataType]:
        """The type each schema column is parsed as now (text once a block needed it)."""
        with self._lock:
            return {n: TEXT if n in self._text else t for n, t in self._types.items()}

    def _as_text(self, name: str) -> None:
        with self._lock:
            self._text.add(name)

    def parse(self, data: bytes | memoryview) -> TypedTable:
        """Parse ``data`` (whole lines, valid UTF-8) until no column needs to be read as text."""
        while True:
            types = self.column_types()
            try:
                result = self._read(data, types)
            except pa.ArrowInvalid as exc:
                self._as_text(self._failed_column(exc, types))
                continue
            nan = self._nan_column(result.table, types)
            if nan is None:
                return result
            self._as_text(nan)

    def _failed_column(self, exc: pa.ArrowInvalid, types: dict[str, pa.DataType]) -> str:
        """The numeric column a conversion error names; anything else is raised again."""
        found = _COLUMN_ERROR.search(str(exc))
        if found is None or int(found.group(1)) >= len(self.names):
            raise exc
        name = self.names[int(found.group(1))]
        if types.get(name) != pa.float64():
            raise exc
        return name

    @staticmethod
    def _nan_column(table: pa.Table, types: dict[str, pa.DataType]) -> str | None:
        for name, kind in types.items():
            if kind == pa.float64() and pc.any(pc.is_nan(table.column(name))).as_py():
                return name
        return None

    def _read(self, data: bytes | memoryview, types: dict[str, pa.DataType]) -> TypedTable:
        invalid: list[InvalidRow] = []

        def on_invalid(row: Any) -> str:
            invalid.append(InvalidRow(int(row.number), str(row.text)))
            return "skip"

        table = pv.read_csv(
            pa.py_buffer(data),
            read_options=pv.ReadOptions(
                column_names=self.names, use_threads=False, block_size=len(data) + 1
            ),
            parse_options=pv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid),
            convert_options=pv.ConvertOptions(
                column_types=types,
                include_columns=self.include,
                null_values=NUMERIC_NULLS,
                strings_can_be_null=False,
                check_utf8=False,
            ),
        )
        return TypedTable(table, invalid)
