from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.data.schema import ColumnSpec, Role, Schema, SchemaHints, infer_schema
from churnscale.exceptions import SchemaError


def _sample() -> pa.Table:
    return pa.table(
        {
            "customerID": ["a", "b", "c", "d"],
            "TotalCharges": ["1.5", " ", "3", "4e2"],
            "Contract": ["Month", "Year", "Month", "Two"],
            "Paperless": ["Yes", "No", "yes", "no"],
            "Signup": ["2024-01-01", "2024-02-03", "", "2024-05-06"],
            "Churn": ["Yes", "No", "No", "Yes"],
        }
    )


def test_infers_roles_and_finds_id_and_target_by_name() -> None:
    schema = infer_schema(_sample())
    assert schema.id == "customerID"
    assert schema.target == "Churn"
    roles = {c.name: c.role for c in schema.columns}
    assert roles["TotalCharges"] is Role.NUMERIC  # a blank is missing, not text
    assert roles["Contract"] is Role.CATEGORICAL
    assert roles["Paperless"] is Role.BOOLEAN
    assert roles["Signup"] is Role.DATETIME


def test_hints_override_and_drop() -> None:
    hints = SchemaHints(drop=("Signup",), roles={"Paperless": Role.CATEGORICAL})
    schema = infer_schema(_sample(), hints)
    assert "Signup" not in schema.names
    assert schema.role_of("Paperless") is Role.CATEGORICAL


def test_unknown_flag_column_is_named() -> None:
    with pytest.raises(SchemaError, match=r"missing columns: nope"):
        infer_schema(_sample(), SchemaHints(target="nope"))


def test_non_binary_target_needs_positive_label() -> None:
    table = pa.table({"Attrition_Flag": ["Existing Customer", "Attrited Customer"]})
    with pytest.raises(SchemaError, match="--positive-label"):
        infer_schema(table)
    schema = infer_schema(table, SchemaHints(positive_label="Attrited Customer"))
    assert schema.target == "Attrition_Flag"


def test_round_trip_json_and_yaml(tmp_path: Path) -> None:
    schema = infer_schema(_sample())
    schema.save(tmp_path / "s.json")
    assert Schema.load(tmp_path / "s.json") == schema
    (tmp_path / "s.yaml").write_text("columns:\n  - {name: x, role: numeric}\n")
    assert Schema.load(tmp_path / "s.yaml").columns == (ColumnSpec("x", Role.NUMERIC),)


def test_bad_role_and_duplicates_are_refused() -> None:
    with pytest.raises(SchemaError, match="roles are"):
        Schema.from_dict({"columns": [{"name": "x", "role": "wat"}]})
    with pytest.raises(SchemaError, match="duplicate column names: x"):
        Schema((ColumnSpec("x", Role.NUMERIC), ColumnSpec("x", Role.NUMERIC)))
