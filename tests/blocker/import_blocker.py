"""Loaded by a ``.pth`` line in every process of a test install: the optional extras' packages
cannot be imported, and at exit the process writes what it tried and what it holds.

With ``CHURNSCALE_IMPORT_LOG`` set to a directory, each process writes ``<pid>.json``:
``{"argv": [...], "attempted": [...], "loaded": [...]}`` — blocked modules it tried to import,
and blocked modules found in ``sys.modules`` at exit (both must be empty).
"""

from __future__ import annotations

import atexit
import importlib.abc
import json
import os
import signal
import sys
from typing import Any

BLOCKED = ("torch", "river", "onnx", "onnxruntime", "onnxmltools", "optuna", "dask", "distributed")
_attempted: list[str] = []


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".", 1)[0] in BLOCKED:
            _attempted.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)


def _report() -> None:
    directory = os.environ.get("CHURNSCALE_IMPORT_LOG")
    if not directory:
        return
    loaded = sorted(m for m in sys.modules if m.split(".", 1)[0] in BLOCKED)
    record = {"argv": sys.argv, "attempted": sorted(set(_attempted)), "loaded": loaded}
    with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as handle:
        json.dump(record, handle)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Report, then die of SIGTERM as before (uvicorn re-raises the signal after its drain,
    which skips atexit)."""
    _report()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


sys.meta_path.insert(0, _Blocker())
atexit.register(_report)
signal.signal(signal.SIGTERM, _on_sigterm)
