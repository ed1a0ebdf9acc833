from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.config import Settings
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import DriftThresholds, compare_matrix
from churnscale.monitoring.dataset import source_drift
from churnscale.monitoring.simulation import redraw_categories, shift_numeric

DRIFTED = ("monthly_charges", "payment_method")


def _drifted(table: pa.Table) -> pa.Table:
    shifted = shift_numeric(table, "monthly_charges", scale=1.3, offset=8.0)
    return redraw_categories(shifted, "payment_method", value="electronic_check", share=0.5)


def _report(model: LightGBMModel, table: pa.Table, threshold: float = 0.2) -> object:
    assert model.reference is not None
    matrix = model.preprocessor.transform(table)
    return compare_matrix(
        model.reference, matrix, model.predict_matrix(matrix), DriftThresholds(psi=threshold)
    )


def test_two_injected_drifts_are_flagged_and_nothing_else(
    drift_model: LightGBMModel, fresh: pa.Table
) -> None:
    report = _report(drift_model, _drifted(fresh))
    psi = {f.name: f.psi for f in report.features}  # type: ignore[attr-defined]
    flagged = {f.name for f in report.drifted}  # type: ignore[attr-defined]
    assert flagged == set(DRIFTED), psi
    assert all(psi[name] > 0.2 for name in DRIFTED)
    assert max(v for k, v in psi.items() if k not in DRIFTED) < 0.05
    summary = report.summary()  # type: ignore[attr-defined]
    for name in DRIFTED:
        assert f"{name} (PSI {psi[name]:.3f})" in summary


def test_data_from_the_same_process_does_not_drift(
    drift_model: LightGBMModel, fresh: pa.Table
) -> None:
    report = _report(drift_model, fresh)
    assert report.drifted == []  # type: ignore[attr-defined]
    assert not report.prediction.drifted  # type: ignore[attr-defined]
    assert report.summary().startswith("no feature drifted")  # type: ignore[attr-defined]


def test_the_threshold_is_configurable(drift_model: LightGBMModel, fresh: pa.Table) -> None:
    table = shift_numeric(fresh, "monthly_charges", scale=1.05)
    strict = _report(drift_model, table, threshold=0.01)
    lenient = _report(drift_model, table, threshold=0.2)
    assert "monthly_charges" in {f.name for f in strict.drifted}  # type: ignore[attr-defined]
    assert lenient.drifted == []  # type: ignore[attr-defined]


def test_tests_use_ks_for_numbers_and_chi_squared_for_categories(
    drift_model: LightGBMModel, fresh: pa.Table
) -> None:
    report = _report(drift_model, _drifted(fresh))
    tests = {f.name: (f.test, f.p_value) for f in report.features}  # type: ignore[attr-defined]
    assert tests["monthly_charges"][0] == "ks" and tests["monthly_charges"][1] < 1e-10
    assert tests["payment_method"][0] == "chi2" and tests["payment_method"][1] < 1e-10


def test_drift_of_a_csv_source_equals_drift_of_the_same_rows_in_memory(
    drift_model: LightGBMModel, fresh: pa.Table, tmp_path: Path
) -> None:
    table = _drifted(fresh.slice(0, 4_000))
    write_batches(table.to_batches(), tmp_path / "new.csv", fmt="csv")
    assert drift_model.reference is not None
    from_file = source_drift(
        drift_model, drift_model.reference, str(tmp_path / "new.csv"), settings=Settings()
    )
    in_memory = _report(drift_model, table)
    assert from_file.current_rows == 4_000
    got = {f.name: f.psi for f in from_file.features}
    want = {f.name: f.psi for f in in_memory.features}  # type: ignore[attr-defined]
    assert got == pytest.approx(want, abs=1e-9)
    assert json.loads(json.dumps(from_file.to_dict()))["drifted_features"][0]["name"] in DRIFTED
