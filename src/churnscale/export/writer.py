"""``export_model``: a model in a compact or portable form, written with its manifest.

Formats: ``onnx`` (LightGBM or MLP, float32; checked with ONNX Runtime against the model to
:data:`FLOAT_TOLERANCE`), ``onnx-int8`` (MLP; ONNX Runtime dynamic int8 quantization, checked
to :data:`INT8_TOLERANCE`), and for the MLP the bundles ``fp16``, ``int8`` and
``pruned[:S]`` (loaded back and checked against the compressed model to 1e-6). An ONNX
export directory holds ``model.onnx``, ``input.json`` (the input contract),
``preprocessor.json``, ``export.json`` and ``manifest.json``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.exceptions import ConfigError, ExportError
from churnscale.export.onnx_graphs import (
    INPUT,
    OPSET,
    OUTPUT,
    lightgbm_to_onnx,
    mlp_to_onnx,
    onnx_session,
    probe_rows,
    quantize_onnx_int8,
    run_onnx,
)
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.bundle import PREPROCESSOR_FILE
from churnscale.model.contract import ChurnModel
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import expect_model

if TYPE_CHECKING:
    from churnscale.model.mlp import MlpModel

ONNX_FILE = "model.onnx"
INPUT_FILE = "input.json"
EXPORT_FILE = "export.json"
FLOAT_TOLERANCE = 1e-5
#: Largest probability change allowed for int8 graphs (measured ~1e-2 on the synthetic data).
INT8_TOLERANCE = 0.05
BUNDLE_TOLERANCE = 1e-6
MLP_FORMATS = ("onnx", "onnx-int8", "fp16", "int8", "pruned[:S]")
LIGHTGBM_FORMATS = ("onnx",)


@dataclass(frozen=True)
class ExportReport:
    """What was written and how closely it matches the source model."""

    format: str
    path: str
    bytes: int
    max_abs_diff: float
    tolerance: float
    rows_checked: int


def export_model(model: ChurnModel, fmt: str, out: Path, *, probe: int = 2_000) -> ExportReport:
    """Write ``model`` (LightGBM or MLP) to ``out`` in format ``fmt``; verify it."""
    if isinstance(model, LightGBMModel):
        if fmt != "onnx":
            raise ConfigError("--format", expected=" or ".join(LIGHTGBM_FORMATS), received=fmt)
        return _export_onnx(model, lightgbm_to_onnx(model), out, fmt, probe)
    from churnscale.model.mlp import MlpModel  # torch, only for an MLP

    where = str(model.metadata.get("manifest_sha256", "model"))
    mlp = expect_model(model, MlpModel, reference=where, purpose="export")
    if fmt == "onnx":
        return _export_onnx(mlp, mlp_to_onnx(mlp.network, len(mlp.feature_names)), out, fmt, probe)
    if fmt == "onnx-int8":
        return _export_onnx_int8(mlp, out, probe)
    return _export_bundle(mlp, fmt, out, probe)


def _export_onnx(model: ChurnModel, graph: bytes, out: Path, fmt: str, probe: int) -> ExportReport:
    rows = probe_rows(model.preprocessor, rows=probe)
    expected = model.predict_matrix(rows)
    with tempfile.TemporaryDirectory(prefix="churnscale-onnx-") as tmp:
        path = Path(tmp) / ONNX_FILE
        path.write_bytes(graph)
        got = run_onnx(onnx_session(path), rows)
    tolerance = FLOAT_TOLERANCE if fmt == "onnx" else INT8_TOLERANCE
    diff = _check(expected, got, tolerance, fmt)
    report = ExportReport(fmt, str(out), len(graph), diff, tolerance, len(rows))
    _publish_onnx(model, graph, out, report)
    return report


def _export_onnx_int8(model: MlpModel, out: Path, probe: int) -> ExportReport:
    with tempfile.TemporaryDirectory(prefix="churnscale-onnx-") as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / ONNX_FILE
        source.write_bytes(mlp_to_onnx(model.network, len(model.feature_names)))
        quantize_onnx_int8(source, target)
        graph = target.read_bytes()
    return _export_onnx(model, graph, out, "onnx-int8", probe)


def _export_bundle(model: MlpModel, fmt: str, out: Path, probe: int) -> ExportReport:
    from churnscale.model.mlp import MlpModel
    from churnscale.neural.compress import compress

    small = compress(model, fmt)
    rows = probe_rows(model.preprocessor, rows=probe)
    shift = float(np.max(np.abs(small.predict_matrix(rows) - model.predict_matrix(rows))))
    small.metadata["export"] = {"format": fmt, "max_abs_diff_vs_float32": shift}
    small.save(out)
    diff = _check(small.predict_matrix(rows), MlpModel.load(out).predict_matrix(rows), 0, fmt)
    size = sum(p.stat().st_size for p in out.iterdir() if p.name == "weights.safetensors")
    return ExportReport(small.variant, str(out), size, max(diff, shift), BUNDLE_TOLERANCE, probe)


def _check(expected: np.ndarray, got: np.ndarray, tolerance: float, fmt: str) -> float:
    diff = float(np.max(np.abs(expected - got))) if expected.size else 0.0
    if tolerance and not diff <= tolerance:
        raise ExportError(fmt, f"predictions differ by {diff:.3g}, above {tolerance:g}")
    if not tolerance and not diff <= BUNDLE_TOLERANCE:
        raise ExportError(fmt, f"the saved bundle predicts differently by {diff:.3g}")
    return diff


def _publish_onnx(model: ChurnModel, graph: bytes, out: Path, report: ExportReport) -> None:
    export = {
        **asdict(report),
        "opset": OPSET,
        "model_type": model.model_type,
        "source_manifest_sha256": model.metadata.get("manifest_sha256"),
    }

    def fill(staging: Path) -> None:
        (staging / ONNX_FILE).write_bytes(graph)
        model.preprocessor.save(staging / PREPROCESSOR_FILE)
        _write_json(staging / INPUT_FILE, input_contract(model.preprocessor))
        _write_json(staging / EXPORT_FILE, export)

    publish_directory(out, fill)


def input_contract(pre: Preprocessor) -> dict[str, Any]:
    """``input.json``: the input tensor's columns and how to encode each value."""
    columns: list[dict[str, Any]] = []
    for spec in pre.features_:
        column: dict[str, Any] = {"name": spec.name, "role": spec.role.value}
        if spec.vocabulary or spec.role.value == "categorical":
            column["vocabulary"] = spec.vocabulary
        columns.append(column)
    return {
        "input": INPUT,
        "output": OUTPUT,
        "dtype": "float32",
        "shape": ["rows", len(columns)],
        "missing": "NaN",
        "categorical": "index in vocabulary; len(vocabulary) for any other value",
        "datetime": "days since 1970-01-01 (fractional)",
        "boolean": "0 or 1",
        "columns": columns,
    }


def verified_onnx(directory: Path) -> Path:
    """The ``model.onnx`` of an export directory, after checking its manifest."""
    verify_directory(directory)
    path = directory / ONNX_FILE
    if not path.is_file():
        raise ExportError(str(directory), f"no {ONNX_FILE}: not an ONNX export")
    return path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
