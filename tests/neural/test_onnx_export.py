"""ONNX export of both models, checked by ONNX Runtime alone; compressed MLP bundles."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnscale.data.synthetic import generate_table
from churnscale.exceptions import ConfigError, ExportError, IntegrityError
from churnscale.export import export_model, verified_onnx
from churnscale.export.onnx_graphs import onnx_session, run_onnx
from churnscale.export.writer import FLOAT_TOLERANCE, INT8_TOLERANCE
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import load_bundle
from churnscale.neural import MlpModel, MlpTrainResult
from churnscale.neural.compress import dense_sparsity
from churnscale.training.local import TrainParams, train_local

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)

#: Run with ONNX Runtime and numpy only: churnscale, torch and lightgbm cannot be imported.
STANDALONE = textwrap.dedent(
    """
    import json, sys
    for name in ("churnscale", "torch", "lightgbm", "sklearn"):
        sys.modules[name] = None
    import numpy as np
    import onnxruntime as ort
    rows = np.load(sys.argv[2])
    session = ort.InferenceSession(sys.argv[1] + "/model.onnx", providers=["CPUExecutionProvider"])
    contract = json.load(open(sys.argv[1] + "/input.json"))
    (out,) = session.run([contract["output"]], {contract["input"]: rows})
    np.save(sys.argv[3], out)
    """
)


@pytest.fixture(scope="module")
def lightgbm_model(mlp_dataset: Path) -> LightGBMModel:
    return train_local(mlp_dataset, params=FAST).model


@pytest.fixture(scope="module")
def rows(one_process: MlpTrainResult) -> np.ndarray:
    matrix = one_process.model.preprocessor.transform(generate_table(2_000, 123))
    return matrix.astype(np.float32)


def _standalone(directory: Path, rows: np.ndarray, tmp_path: Path) -> np.ndarray:
    np.save(tmp_path / "rows.npy", rows)
    script = tmp_path / "run.py"
    script.write_text(STANDALONE)
    args = [str(directory), str(tmp_path / "rows.npy"), str(tmp_path / "out.npy")]
    subprocess.run([sys.executable, str(script), *args], check=True, timeout=120)
    return np.asarray(np.load(tmp_path / "out.npy"), dtype=np.float64)


def test_mlp_onnx_matches_torch_without_churnscale(
    one_process: MlpTrainResult, rows: np.ndarray, tmp_path: Path
) -> None:
    model = one_process.model
    report = export_model(model, "onnx", tmp_path / "mlp-onnx")
    assert report.max_abs_diff <= FLOAT_TOLERANCE and report.bytes > 0
    got = _standalone(tmp_path / "mlp-onnx", rows, tmp_path)
    np.testing.assert_allclose(got, model.predict_matrix(rows), rtol=0, atol=FLOAT_TOLERANCE)
    contract = json.loads((tmp_path / "mlp-onnx" / "input.json").read_text())
    assert [c["name"] for c in contract["columns"]] == model.feature_names


def test_lightgbm_onnx_matches_lightgbm_without_churnscale(
    lightgbm_model: LightGBMModel, rows: np.ndarray, tmp_path: Path
) -> None:
    lightgbm_model.save(tmp_path / "bundle")
    model = load_bundle(tmp_path / "bundle")
    export_model(model, "onnx", tmp_path / "lgb-onnx")
    got = _standalone(tmp_path / "lgb-onnx", rows, tmp_path)
    expected = model.predict_matrix(rows.astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=0, atol=FLOAT_TOLERANCE)


def test_int8_onnx_stays_within_its_stated_tolerance(
    one_process: MlpTrainResult, rows: np.ndarray, tmp_path: Path
) -> None:
    report = export_model(one_process.model, "onnx-int8", tmp_path / "int8")
    assert report.tolerance == INT8_TOLERANCE and report.max_abs_diff <= INT8_TOLERANCE
    got = run_onnx(onnx_session(verified_onnx(tmp_path / "int8")), rows)
    diff = np.abs(got - one_process.model.predict_matrix(rows))
    assert diff.max() <= INT8_TOLERANCE and diff.max() > 0  # quantized: close, not equal


def test_altered_onnx_file_is_refused(one_process: MlpTrainResult, tmp_path: Path) -> None:
    export_model(one_process.model, "onnx", tmp_path / "x")
    with (tmp_path / "x" / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IntegrityError, match="manifest says"):
        verified_onnx(tmp_path / "x")


@pytest.mark.parametrize("fmt", ["fp16", "int8", "pruned:0.5", "pruned:0.9"])
def test_compressed_bundles_round_trip_and_shrink(
    one_process: MlpTrainResult, fmt: str, tmp_path: Path
) -> None:
    model = one_process.model
    model.save(tmp_path / "float")
    full = (tmp_path / "float" / "weights.safetensors").stat().st_size
    report = export_model(model, fmt, tmp_path / "small")
    loaded = MlpModel.load(tmp_path / "small")
    assert loaded.variant == fmt == report.format
    table = generate_table(3_000, 321)
    labels = table.column("churned").to_numpy()
    auc = roc_auc_score(labels, loaded.predict_proba(table))
    base = roc_auc_score(labels, model.predict_proba(table))
    if fmt in ("fp16", "int8"):
        assert report.bytes < full and abs(auc - base) < 0.01
    if fmt == "pruned:0.9":
        assert report.bytes < full and dense_sparsity(loaded.network) >= 0.89
    assert auc > 0.6


def test_lightgbm_has_only_onnx_and_bad_formats_are_refused(
    lightgbm_model: LightGBMModel, one_process: MlpTrainResult, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="--format: expected onnx, got 'fp16'"):
        export_model(lightgbm_model, "fp16", tmp_path / "a")
    with pytest.raises(ConfigError, match=r"--format: expected pruned:S with S in \(0, 1\)"):
        export_model(one_process.model, "pruned:1.5", tmp_path / "b")
    with pytest.raises(ConfigError, match="expected float32, fp16, int8 or pruned"):
        export_model(one_process.model, "int4", tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_refuses_to_overwrite(one_process: MlpTrainResult, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(IntegrityError, match="already exists"):
        export_model(one_process.model, "onnx", tmp_path / "taken")
    with pytest.raises(ExportError, match="not an ONNX export"):
        export_model(one_process.model, "fp16", tmp_path / "fp16")
        verified_onnx(tmp_path / "fp16")
