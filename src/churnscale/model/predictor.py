"""The fastest correct tree evaluator for a :class:`LightGBMModel`, shared by service and scoring.

Measured on this machine for a 100-tree model (see docs/benchmarks.md): LightGBM's ``predict``
on one row with ``num_threads=1`` ~28 µs; the same trees compiled to native code by lleaves
(LLVM) ~10 µs through its ``predict`` and ~2 µs through its entry point. Both give
LightGBM's probabilities to within 1e-12; tests hold them to 1e-6.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from churnscale.exceptions import ConfigError
from churnscale.model.lightgbm import LightGBMModel

PredictorKind = Literal["auto", "compiled", "lightgbm"]
#: lleaves' entry point, taking raw addresses (faster than building ctypes pointers per call).
_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)


class Predictor:
    """Churn probability of encoded tree-mode rows: one row (hot path) or a matrix (batch)."""

    def __init__(
        self, model: LightGBMModel, *, kind: PredictorKind = "auto", cache: Path | None = None
    ) -> None:
        """``cache``: a directory keeping compiled forests (see :func:`compile_forest`)."""
        self.model = model
        if not model.compilable:  # trees whose output is not the probability (survival)
            kind = "lightgbm"
        compiled = compile_forest(model, cache) if kind != "lightgbm" else None
        if kind == "compiled" and compiled is None:
            raise ConfigError(
                "predictor", expected="lleaves installed (pip install lleaves)", received=kind
            )
        self.kind: str = "lleaves" if compiled is not None else "lightgbm"
        self._compiled = compiled
        self._entry = _entry_point(compiled)
        self._out = np.zeros(1, dtype=np.float64)
        self._out_address = self._out.ctypes.data
        self._out_value = self._out.data  # indexing a memoryview gives a float: no NumPy scalar
        self._row = self._out  # the last row seen and its address (``.ctypes`` costs ~1 µs)
        self._row_address = self._out_address

    def predict_one(self, row: np.ndarray) -> float:
        """Probability for one float64 row (contiguous, ``len(feature_names)`` values).

        A caller that reuses one row array (the service) skips looking up its address.
        """
        if self._entry is not None:
            if row is not self._row:
                self._row, self._row_address = row, row.ctypes.data
            self._entry(self._row_address, self._out_address, 0, 1)
            return self._out_value[0]  # type: ignore[no-any-return]
        if self._compiled is not None:
            return float(self._compiled.predict(row.reshape(1, -1), n_jobs=1)[0])
        return float(self.model.predict_matrix(row.reshape(1, -1), threads=1)[0])

    def predict_matrix(self, matrix: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Probabilities for a float64 matrix of encoded rows."""
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        if self._compiled is None:
            return self.model.predict_matrix(matrix, threads=threads)
        jobs = threads or os.cpu_count() or 1
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        return np.asarray(self._compiled.predict(data, n_jobs=jobs), dtype=np.float64)

    def warm(self) -> None:
        """Run both paths once (first calls pay page faults and lazy initialisation)."""
        row = np.full(len(self.model.feature_names), np.nan)
        self.predict_one(row)
        self.predict_matrix(np.stack([row, row]))


def _entry_point(compiled: Any | None) -> Callable[[int, int, int, int], None] | None:
    """lleaves' compiled ``forest_root(data, out, start, end)`` called with raw addresses."""
    function = getattr(compiled, "_c_entry_func", None)  # lleaves 1.3 keeps it here
    if function is None:
        return None
    address = ctypes.cast(function, ctypes.c_void_p).value
    if address is None:
        return None
    entry: Callable[[int, int, int, int], None] = _ENTRY(address)
    return entry


#: LLVM's small code model measured ~20% faster batch prediction, but a CI run segfaulted
#: inside lleaves' predict with it (lleaves warns it can fail); the default "large" is used.
CODE_MODEL = "large"


def compile_forest(model: LightGBMModel, cache: Path | None = None) -> Any | None:
    """The model's trees compiled to native code by lleaves, or None when it is not installed.

    With ``cache``, the object code is kept there under a key of the model text, lleaves'
    settings and this CPU, with its SHA-256 beside it: a later call for the same model loads
    it (milliseconds) instead of compiling (about a second for 100 trees). A file whose digest
    does not match is discarded and the forest compiled again; files are moved into place
    whole (written aside, then renamed), so a crash never leaves half an object to load.
    """
    try:
        import lleaves
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="churnscale-lleaves-") as tmp:
        path = os.path.join(tmp, "model.txt")
        model.booster.save_model(path)
        compiled = lleaves.Model(model_file=path)
        if cache is None:
            compiled.compile(fcodemodel=CODE_MODEL)
            return compiled
        cache.mkdir(parents=True, exist_ok=True)
        obj = cache / f"{_cache_key(Path(path))}.o"
        if obj.exists() and not _intact(obj):
            obj.unlink(missing_ok=True)
        if obj.exists():
            compiled.compile(cache=str(obj), fcodemodel=CODE_MODEL)
            return compiled
        staged = cache / f".{obj.name}.{os.getpid()}.tmp"
        try:
            compiled.compile(cache=str(staged), fcodemodel=CODE_MODEL)
            digest = hashlib.sha256(staged.read_bytes()).hexdigest()
            _digest_file(obj).write_text(digest + "\n")
            os.replace(staged, obj)
        finally:
            staged.unlink(missing_ok=True)
    return compiled


def _cache_key(model_file: Path) -> str:
    """SHA-256 of the model text, lleaves' version and settings, and the host CPU."""
    from importlib.metadata import version

    from llvmlite import binding

    key = hashlib.sha256(model_file.read_bytes())
    host = f"{binding.get_host_cpu_name()}|{binding.get_host_cpu_features().flatten()}"
    key.update(f"|lleaves {version('lleaves')}|{CODE_MODEL}|{host}".encode())
    return key.hexdigest()


def _digest_file(obj: Path) -> Path:
    return obj.with_name(obj.name + ".sha256")


def _intact(obj: Path) -> bool:
    """Whether ``obj`` still has the digest recorded when it was written."""
    try:
        recorded = _digest_file(obj).read_text().strip()
    except OSError:
        return False
    return hmac.compare_digest(recorded, hashlib.sha256(obj.read_bytes()).hexdigest())
