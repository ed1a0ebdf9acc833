"""``TrackedRun``: one MLflow run, with parameters, metrics, artifacts and registered bundles."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from churnscale.artifacts import verify_directory
from churnscale.exceptions import ConfigError, SourceError
from churnscale.registry import backend
from churnscale.registry.references import check_name, parse_reference
from churnscale.registry.versions import TAG_FINGERPRINT, TAG_MANIFEST, TAG_PARENT, ModelVersion

BUNDLE_PATH = "bundle"
#: MLflow run statuses a finished block may end with (FAILED is set when the block raises).
END_STATUSES = ("FINISHED", "KILLED", "FAILED")
_BATCH = 1_000  # MLflow's limit of metrics per log_batch call
_FINGERPRINT_KEYS = ("data_fingerprint", "fingerprint")


class TrackedRun:
    """A live MLflow run; created by :meth:`Registry.run`, which also ends it."""

    def __init__(self, client: Any, *, uri: str, run_id: str) -> None:
        self._client = client
        self._uri = uri
        self.run_id = run_id
        #: ``(name, version)`` of every version this run registered (undone if the run fails).
        self.registered: list[tuple[str, int]] = []
        self._end_status = "FINISHED"

    @property
    def end_status(self) -> str:
        """The status the run gets when its block ends without raising."""
        return self._end_status

    def end_as(self, status: str) -> None:
        """End the run as ``status`` (FINISHED, KILLED for a stopped/pruned run, or FAILED)."""
        if status not in END_STATUSES:
            raise ConfigError("run status", expected=" or ".join(END_STATUSES), received=status)
        self._end_status = status

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyperparameters and settings (values are stored as strings)."""
        from mlflow.entities import Param

        batch = [Param(str(k), str(v)) for k, v in params.items()]
        backend.call(
            self._uri, "log params", lambda: self._client.log_batch(self.run_id, params=batch)
        )

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Record metric values, optionally at a training ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(str(k), float(v), now, step or 0) for k, v in metrics.items()]
        backend.call(
            self._uri, "log metrics", lambda: self._client.log_batch(self.run_id, metrics=batch)
        )

    def log_metric_history(self, key: str, points: Sequence[tuple[int, float]]) -> None:
        """Record one metric's value at many steps (a learning curve), in batches."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(str(key), float(v), now, int(step)) for step, v in points]
        for start in range(0, len(metrics), _BATCH):
            chunk = metrics[start : start + _BATCH]
            backend.call(
                self._uri,
                "log metrics",
                lambda c=chunk: self._client.log_batch(self.run_id, metrics=c),  # type: ignore[misc]
            )

    def log_artifact(self, path: Path, *, artifact_path: str | None = None) -> None:
        """Attach a file or a whole directory to the run."""
        if not path.exists():
            raise SourceError(str(path), "no such file or directory to log as an artifact")
        log = self._client.log_artifacts if path.is_dir() else self._client.log_artifact
        backend.call(self._uri, "log artifact", lambda: log(self.run_id, str(path), artifact_path))

    def register_bundle(
        self, bundle: Path, *, name: str, parent: str | None = None, description: str = ""
    ) -> ModelVersion:
        """Verify ``bundle``, log it under ``bundle/`` and register it as a new version of ``name``.

        The version is tagged with the manifest's SHA-256 (checked again at every resolve), the
        data fingerprint from ``metadata.json`` when present, and ``parent`` (``NAME/VERSION``).
        """
        check_name(name)
        parent_ref = str(parse_reference(parent, allow_paths=False)) if parent else None
        if self.registered:
            raise ConfigError(
                "register_bundle",
                expected="one bundle per run",
                received=f"a second bundle {bundle}",
            )
        manifest = verify_directory(bundle)
        tags = {TAG_MANIFEST: str(manifest["manifest_sha256"])}
        fingerprint = _data_fingerprint(bundle)
        if fingerprint:
            tags[TAG_FINGERPRINT] = fingerprint
        if parent_ref:
            tags[TAG_PARENT] = parent_ref
        self.log_artifact(bundle, artifact_path=BUNDLE_PATH)
        self._ensure_registered_model(name)
        entity = backend.call(
            self._uri,
            "create model version",
            lambda: self._client.create_model_version(
                name,
                source=f"runs:/{self.run_id}/{BUNDLE_PATH}",
                run_id=self.run_id,
                tags=tags,
                description=description or None,
            ),
        )
        self.registered.append((name, int(entity.version)))
        return ModelVersion.from_mlflow(entity)

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            backend.call(
                self._uri,
                "create registered model",
                lambda: self._client.create_registered_model(name),
            )
        except MlflowException as exc:
            if backend.error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise


def _data_fingerprint(bundle: Path) -> str | None:
    path = bundle / "metadata.json"
    if not path.is_file():
        return None
    try:
        metadata = json.loads(path.read_text())
    except ValueError as exc:
        raise SourceError(str(path), f"not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        return None
    candidates = [metadata.get(k) for k in _FINGERPRINT_KEYS]
    data = metadata.get("data") or metadata.get("dataset")
    if isinstance(data, dict):
        candidates.append(data.get("fingerprint"))
    return next((str(c) for c in candidates if isinstance(c, str) and c), None)
