"""MLP bundles: safetensors + manifest, same predictions after loading, tampering refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from churnscale.artifacts import publish_directory
from churnscale.data.synthetic import generate_table
from churnscale.exceptions import IntegrityError, ModelNotFoundError
from churnscale.model.mlp import NETWORK_FILE, WEIGHTS_FILE
from churnscale.neural import MlpModel, MlpTrainResult


def test_round_trip_and_one_equals_batch(two_processes: MlpTrainResult, tmp_path: Path) -> None:
    model = two_processes.model
    model.save(tmp_path / "mlp")
    loaded = MlpModel.load(tmp_path / "mlp")
    table = generate_table(300, 99)
    batch = loaded.predict_proba(table)
    np.testing.assert_array_equal(batch, model.predict_proba(table))
    one = np.array([loaded.predict_proba_one(x) for x in table.to_pylist()[:50]])
    np.testing.assert_allclose(one, batch[:50], rtol=0, atol=1e-6)
    assert loaded.metadata["model_type"] == "mlp" and loaded.variant == "float32"
    assert loaded.predict_matrix(np.empty((0, len(loaded.feature_names)))).shape == (0,)


def _copy_bundle(model: MlpModel, root: Path) -> Path:
    return model.save(root / "bundle")


def test_altered_weights_are_refused(two_processes: MlpTrainResult, tmp_path: Path) -> None:
    path = _copy_bundle(two_processes.model, tmp_path)
    data = bytearray((path / WEIGHTS_FILE).read_bytes())
    data[-3] ^= 0x01
    (path / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="SHA-256 does not match the manifest"):
        MlpModel.load(path)


def _republish(source: Path, target: Path, replace: dict[str, bytes]) -> Path:
    def fill(staging: Path) -> None:
        for item in source.iterdir():
            if item.name != "manifest.json":
                (staging / item.name).write_bytes(replace.get(item.name, item.read_bytes()))

    publish_directory(target, fill)
    return target


def test_a_pickle_in_place_of_weights_is_never_unpickled(
    two_processes: MlpTrainResult, tmp_path: Path
) -> None:
    source = _copy_bundle(two_processes.model, tmp_path)
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Trap(str(marker)))
    path = _republish(source, tmp_path / "evil", {WEIGHTS_FILE: payload})
    with pytest.raises(IntegrityError, match="unreadable bundle"):
        MlpModel.load(path)
    assert not marker.exists()


class _Trap:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_weights_of_another_shape_are_refused(
    two_processes: MlpTrainResult, tmp_path: Path
) -> None:
    source = _copy_bundle(two_processes.model, tmp_path)
    save_file({"mlp.0.weight": torch.zeros(3, 3)}, str(tmp_path / "w.safetensors"))
    weights = (tmp_path / "w.safetensors").read_bytes()
    path = _republish(source, tmp_path / "shape", {WEIGHTS_FILE: weights})
    with pytest.raises(IntegrityError, match=r"weights do not fit network\.json"):
        MlpModel.load(path)


def test_unknown_stored_form_and_missing_files_are_refused(
    two_processes: MlpTrainResult, tmp_path: Path
) -> None:
    source = _copy_bundle(two_processes.model, tmp_path)
    network = json.loads((source / NETWORK_FILE).read_text())
    edited = json.dumps({**network, "variant": "int4"}).encode()
    path = _republish(source, tmp_path / "form", {NETWORK_FILE: edited})
    with pytest.raises(IntegrityError, match="unknown stored form 'int4'"):
        MlpModel.load(path)
    with pytest.raises(ModelNotFoundError, match="no bundle directory"):
        MlpModel.load(tmp_path / "absent")
