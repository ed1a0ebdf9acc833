"""The bundle: the directory a model of any kind is saved in, published and verified whole.

Every bundle holds

- ``preprocessor.json``: the fitted Preprocessor,
- ``metadata.json``: ``model_type``, schema, data fingerprint, parameters, metrics, library
  versions, commit,
- ``reference.json`` (optional): the training data's drift reference profile
  (:class:`~churnscale.model.reference.DriftReference`); bundles without it still load,
- the files of its model type (``model.txt`` for LightGBM; ``weights.safetensors`` and
  ``network.json`` for the MLP),
- ``manifest.json``: the SHA-256 of every file, verified before anything is parsed.

A bundle is published atomically by :func:`churnscale.artifacts.publish_directory`. Nothing in
it is pickled, and loading never runs code from it.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from churnscale.artifacts import publish_directory, verify_directory
from churnscale.exceptions import IntegrityError, ModelNotFoundError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.reference import REFERENCE_FILE, DriftReference

PREPROCESSOR_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"
#: The model type of a bundle whose metadata names none (every bundle before model types).
DEFAULT_MODEL_TYPE = "lightgbm"


@dataclass(frozen=True)
class BundleParts:
    """What every bundle holds besides its model type's own files, read and checked."""

    preprocessor: Preprocessor
    metadata: dict[str, Any]
    reference: DriftReference | None
    manifest_sha256: str


def write_bundle(
    path: Path,
    *,
    preprocessor: Preprocessor,
    metadata: Mapping[str, Any],
    reference: DriftReference | None,
    write_model: Callable[[Path], None],
) -> Path:
    """Publish a bundle at ``path``: ``write_model(staging)`` writes the model type's files."""

    def fill(staging: Path) -> None:
        # written by Python, so a full disk raises OSError (LightGBM's own writer raises
        # a LightGBMError that says nothing of the cause)
        write_model(staging)
        preprocessor.save(staging / PREPROCESSOR_FILE)
        (staging / METADATA_FILE).write_text(
            json.dumps(dict(metadata), indent=2, sort_keys=True, default=_json_default) + "\n"
        )
        if reference is not None:
            reference.save(staging / REFERENCE_FILE)

    publish_directory(path, fill)
    return path


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle directory whose files all match its manifest."""

    path: Path
    files: frozenset[str]
    manifest_sha256: str


def verify_bundle(path: Path, *, model_files: frozenset[str], model_type: str) -> VerifiedBundle:
    """Check the bundle at ``path`` against its manifest and for the files its type needs."""
    if not path.is_dir():
        raise ModelNotFoundError(str(path), "no bundle directory at this path")
    manifest = verify_directory(path)
    files = frozenset(manifest["files"])
    missing = sorted((model_files | {PREPROCESSOR_FILE, METADATA_FILE}) - files)
    if missing:
        raise IntegrityError(str(path), f"not a {model_type} bundle: missing {missing}")
    return VerifiedBundle(path, files, str(manifest["manifest_sha256"]))


def read_parts(bundle: VerifiedBundle) -> BundleParts:
    """The Preprocessor, metadata and drift reference of a verified bundle."""
    path = bundle.path
    preprocessor = Preprocessor.load(path / PREPROCESSOR_FILE)
    metadata = json.loads((path / METADATA_FILE).read_text())
    has_reference = REFERENCE_FILE in bundle.files
    reference = DriftReference.load(path / REFERENCE_FILE) if has_reference else None
    if reference is not None and [h.name for h in reference.features] != (
        preprocessor.feature_names
    ):
        raise IntegrityError(str(path), "drift reference and preprocessor disagree")
    return BundleParts(preprocessor, metadata, reference, bundle.manifest_sha256)


def declared_model_type(path: Path) -> str:
    """The ``model_type`` a bundle's metadata declares, read only to pick its loader (the
    loader verifies every file before trusting any); :data:`DEFAULT_MODEL_TYPE` when none."""
    try:
        declared = json.loads((path / METADATA_FILE).read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_MODEL_TYPE  # the loader's verification says what is wrong
    return declared if isinstance(declared, str) else DEFAULT_MODEL_TYPE


def environment() -> dict[str, str]:
    """Library versions and the git commit the model was made with."""
    import lightgbm
    import sklearn

    from churnscale.version import __version__

    return {
        "churnscale": __version__,
        "lightgbm": lightgbm.__version__,
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
