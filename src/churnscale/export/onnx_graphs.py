"""ONNX graphs of both churn models, and ONNX Runtime to run and check them.

Input contract (both models): one float32 tensor ``features`` of shape (rows, F), the
Preprocessor's tree-mode row (``Preprocessor.transform`` / ``encode_one``) in the column order
of ``input.json``: numbers, booleans (0/1) and dates (days since 1970-01-01) as they are,
categories as their index in the column's ``vocabulary`` (``len(vocabulary)`` for any other
value), NaN for missing. Output: ``probability``, float32 of shape (rows,), the churn
probability. Nothing else is needed to run a graph: ``onnxruntime`` and ``numpy``.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from churnscale.data.schema import Role
from churnscale.exceptions import ConfigError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.lightgbm import LightGBMModel

INPUT = "features"
OUTPUT = "probability"
OPSET = 17
#: The highest opset onnxmltools 1.16 converts LightGBM to.
LIGHTGBM_OPSET = 15


def mlp_to_onnx(network: object, width: int) -> bytes:
    """The float32 MLP (a ``ChurnNet``) as an ONNX graph ending in the sigmoid."""
    import torch

    from churnscale.model.network import ProbabilityNet

    wrapped = ProbabilityNet(network).eval()  # type: ignore[arg-type]
    dummy = torch.zeros((2, width), dtype=torch.float32)
    with tempfile.TemporaryDirectory(prefix="churnscale-onnx-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        path = Path(tmp) / "mlp.onnx"
        torch.onnx.export(
            wrapped,
            (dummy,),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "rows"}, OUTPUT: {0: "rows"}},
            opset_version=OPSET,
            dynamo=False,
        )
        return path.read_bytes()


def lightgbm_to_onnx(model: LightGBMModel) -> bytes:
    """The LightGBM trees as an ONNX ``TreeEnsembleClassifier`` with a ``probability`` output."""
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    width = len(model.feature_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = convert_lightgbm(
            float32_thresholds(model.booster),
            initial_types=[(INPUT, FloatTensorType([None, width]))],
            zipmap=False,
            target_opset=LIGHTGBM_OPSET,
        )
    probabilities = graph.graph.output[1].name
    index = onnx.helper.make_tensor("churn_column", onnx.TensorProto.INT64, [], [1])
    graph.graph.initializer.append(index)
    graph.graph.node.append(
        onnx.helper.make_node("Gather", [probabilities, "churn_column"], [OUTPUT], axis=1)
    )
    del graph.graph.output[:]
    graph.graph.output.append(
        onnx.helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["rows"])
    )
    onnx.checker.check_model(graph)
    return bytes(graph.SerializeToString())


def float32_thresholds(booster: Any) -> Any:
    """The same trees with every split threshold rounded *down* to a float32.

    ONNX trees hold float32 thresholds; rounding a double threshold to the nearest float32 can
    move it above the original, and a float32 input equal to it would then go the other way.
    For any float32 value x, ``x <= t`` exactly when ``x <= float32_floor(t)``, so the rounded
    trees decide every float32 row as the original trees do.
    """
    import lightgbm as lgb

    # without ``tree_sizes`` (byte lengths that the edit changes) LightGBM reads trees in order
    lines = [x for x in booster.model_to_string().splitlines() if not x.startswith("tree_sizes=")]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            low = values.astype(np.float32)
            above = low.astype(np.float64) > values
            low[above] = np.nextafter(low[above], np.float32(-np.inf))
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in low)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def quantize_onnx_int8(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantization of a float32 graph (weights int8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # its advice to pre-process is for vision models
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def onnx_session(path: Path, *, threads: int = 1) -> object:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: object, matrix: np.ndarray) -> np.ndarray:
    """Probabilities from a session for tree-mode rows (cast to float32)."""
    feed = {INPUT: np.ascontiguousarray(matrix, dtype=np.float32)}
    (out,) = session.run([OUTPUT], feed)  # type: ignore[attr-defined]
    return np.asarray(out, dtype=np.float64)


def probe_rows(pre: Preprocessor, *, rows: int = 2_000, seed: int = 0) -> np.ndarray:
    """Plausible tree-mode rows for checking an export: values near each feature's mean,
    every category code (other included), 5% missing; float32-representable."""
    if rows < 1:
        raise ConfigError("rows", expected="at least 1", received=rows)
    rng = np.random.default_rng(seed)
    out = np.empty((rows, len(pre.features_)), dtype=np.float64)
    for i, spec in enumerate(pre.features_):
        if spec.role is Role.CATEGORICAL:
            out[:, i] = rng.integers(0, len(spec.vocabulary) + 1, size=rows)
        elif spec.role is Role.BOOLEAN:
            out[:, i] = rng.integers(0, 2, size=rows)
        else:
            out[:, i] = rng.normal(spec.stats.mean, 1.5 * spec.stats.std, size=rows)
        out[rng.random(rows) < 0.05, i] = np.nan
    return out.astype(np.float32).astype(np.float64)
