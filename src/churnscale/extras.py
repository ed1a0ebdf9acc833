"""Optional dependencies: which extra of ``pip install churnscale[...]`` brings what.

``pip install churnscale`` installs what ingest, train, evaluate, register, serve and score
need. A feature that needs more calls :func:`require` before importing it, so a missing
package is one line naming the extra to install (exit 2 in the CLI), never a traceback.
Nothing is imported here: the check only looks the modules up.
"""

from __future__ import annotations

import importlib.util

from churnscale.exceptions import ChurnscaleError

#: Each extra and the modules it provides (what :func:`require` looks up).
EXTRAS: dict[str, tuple[str, ...]] = {
    "dask": ("dask", "distributed"),
    "neural": ("torch", "safetensors"),
    "online": ("river", "redis", "nats"),
    "tune": ("optuna",),
    "export": ("onnx", "onnxruntime", "onnxmltools"),
    "grpc": ("grpc", "tritonclient"),
}


class MissingExtraError(ChurnscaleError, ImportError):
    """A feature needs an optional dependency that is not installed."""

    def __init__(self, *, extra: str, module: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional dependency {module!r}, which is not installed: "
            f"pip install 'churnscale[{extra}]'"
        )
        self.extra = extra
        self.module = module
        self.feature = feature


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(*extras: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` for the first module of ``extras`` that is missing.

    ``feature`` says what needs it (``"--model mlp"``), for the message.

    >>> require("tune", feature="churnscale tune") if installed("optuna") else None
    """
    for extra in extras:
        for module in EXTRAS[extra]:
            if not installed(module):
                raise MissingExtraError(extra=extra, module=module, feature=feature)
