"""``Registry``: MLflow runs and the model registry, with a verified local bundle cache.

Bundles are only ever downloaded and checksum-verified, never loaded through MLflow's model
flavours (no ``mlflow.pyfunc``), so nothing in an artifact is executed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from churnscale.artifacts import verify_directory
from churnscale.config import Settings
from churnscale.exceptions import (
    ConfigError,
    IntegrityError,
    ModelNotFoundError,
    RegistryUnavailableError,
)
from churnscale.registry import backend
from churnscale.registry.cache import BundleCache
from churnscale.registry.references import (
    ModelRef,
    check_alias,
    check_name,
    check_version,
    parse_reference,
)
from churnscale.registry.tracking import TrackedRun
from churnscale.registry.versions import TAG_MANIFEST, ModelVersion

_log = logging.getLogger("churnscale.registry")
_PAGE = 200


class Registry:
    """Runs, registered bundle versions and aliases in one MLflow store (SQLite by default)."""

    def __init__(self, settings: Settings, *, artifact_root: str | None = None) -> None:
        uri = settings.resolved_tracking_uri()
        #: The tracking URI for messages (any password masked).
        self.uri = backend.redact(uri)
        self._store_uri = backend.store_uri(uri)
        self.cache = BundleCache(settings.home / "bundles")
        default_root = (settings.home / "mlartifacts").resolve().as_uri()
        self._artifact_root = artifact_root or (
            default_root if backend.is_database_uri(uri) else None
        )
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` (created, and MLflow imported, on first use)."""
        if self._client is None:
            self._client = backend.new_client(self._store_uri)
        return self._client

    def _call(
        self, what: str, fn: Any, *, reference: str | None = None, idempotent: bool = False
    ) -> Any:
        return backend.call(self.uri, what, fn, reference=reference, idempotent=idempotent)

    # runs -------------------------------------------------------------------------------

    @contextmanager
    def run(
        self,
        *,
        experiment: str,
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Iterator[TrackedRun]:
        """A real MLflow run (nested under ``parent_run_id``); FAILED, with its registered
        versions deleted, if the block raises; else FINISHED or what ``TrackedRun.end_as`` set."""
        run_tags = dict(tags or {})
        if parent_run_id is not None:
            self._check_run(parent_run_id)
            run_tags["mlflow.parentRunId"] = parent_run_id
        experiment_id = self._experiment_id(experiment)
        created = self._call(
            "create run",
            lambda: self.client.create_run(experiment_id, run_name=run_name, tags=run_tags),
        )
        tracked = TrackedRun(self.client, uri=self.uri, run_id=created.info.run_id)
        try:
            if params:
                tracked.log_params(params)
            yield tracked
        except BaseException:
            self._abandon(tracked)
            raise
        self._call(
            "end run", lambda: self.client.set_terminated(tracked.run_id, tracked.end_status)
        )

    def run_status(self, run_id: str) -> str:
        """The status of a run: RUNNING, FINISHED, FAILED or KILLED."""
        return str(self._check_run(run_id).info.status)

    def _check_run(self, run_id: str) -> Any:
        try:
            return self._call("get run", lambda: self.client.get_run(run_id), reference=run_id)
        except ModelNotFoundError as exc:
            raise ConfigError("run id", expected="an existing MLflow run", received=run_id) from exc

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        if not name.strip():
            raise ConfigError("experiment", expected="a non-empty name", received=name)
        found = self._call("get experiment", lambda: self.client.get_experiment_by_name(name))
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(
                self._call(
                    "create experiment",
                    lambda: self.client.create_experiment(
                        name, artifact_location=self._artifact_root
                    ),
                )
            )
        except MlflowException as exc:  # created by another process meanwhile
            if backend.error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
        return str(
            self._call(
                "get experiment", lambda: self.client.get_experiment_by_name(name)
            ).experiment_id
        )

    def _abandon(self, tracked: TrackedRun) -> None:
        for name, version in tracked.registered:
            try:
                self._call(
                    "delete model version",
                    partial(self.client.delete_model_version, name, str(version)),
                )
            except Exception as exc:
                _log.warning(
                    "could not delete %s/%s of failed run %s: %s",
                    name,
                    version,
                    tracked.run_id,
                    exc,
                )
        try:
            self._call("end run", lambda: self.client.set_terminated(tracked.run_id, "FAILED"))
        except Exception as exc:
            _log.warning("could not mark run %s FAILED: %s", tracked.run_id, exc)

    # versions ---------------------------------------------------------------------------

    def list_models(self) -> list[ModelVersion]:
        """Every version of every registered model, by name then version."""
        versions: list[ModelVersion] = []
        for model in self._pages(
            lambda token: self.client.search_registered_models(max_results=_PAGE, page_token=token)
        ):
            by_version = _aliases_by_version(model.aliases)
            for entity in self._pages(
                lambda token, n=model.name: self.client.search_model_versions(
                    f"name='{check_name(n)}'", max_results=_PAGE, page_token=token
                )
            ):
                aliases = by_version.get(int(entity.version), ())
                versions.append(ModelVersion.from_mlflow(entity, aliases=aliases))
        return sorted(versions, key=lambda v: (v.name, v.version))

    def _pages(self, fetch: Any) -> Iterator[Any]:
        token = None
        while True:
            page = self._call("search", partial(fetch, token))
            yield from page
            token = page.token
            if not token:
                return

    def show(self, name: str, version: int | None = None) -> ModelVersion:
        """One version of ``name`` (the latest when ``version`` is None)."""
        ref = ModelRef(
            check_name(name), version=None if version is None else check_version(version)
        )
        return self._version(self._lookup(ref))

    def lookup(self, reference: str) -> ModelVersion:
        """The version a ``NAME``, ``NAME/VERSION`` or ``NAME@ALIAS`` reference means now."""
        ref = parse_reference(reference, allow_paths=False)
        if not isinstance(ref, ModelRef):  # unreachable: paths are refused above
            raise ModelNotFoundError(reference, "not a registry reference")
        return self._version(self._lookup(ref))

    def _version(self, entity: Any) -> ModelVersion:
        model = self._call(
            "get registered model", lambda: self.client.get_registered_model(entity.name)
        )
        aliases = _aliases_by_version(model.aliases).get(int(entity.version), ())
        return ModelVersion.from_mlflow(entity, aliases=aliases)

    def _lookup(self, ref: ModelRef) -> Any:
        """The MLflow model version a reference means, asking the server."""
        where = str(ref)
        if ref.version is not None:
            return self._call(
                "get model version",
                lambda: self.client.get_model_version(ref.name, str(ref.version)),
                reference=where,
            )
        if ref.alias is not None:
            return self._call(
                "get model version by alias",
                lambda: self.client.get_model_version_by_alias(ref.name, ref.alias),
                reference=where,
            )
        latest = max(
            self._pages(
                lambda token: self.client.search_model_versions(
                    f"name='{ref.name}'", max_results=_PAGE, page_token=token
                )
            ),
            key=lambda e: int(e.version),
            default=None,
        )
        if latest is None:
            raise ModelNotFoundError(where, "no registered versions")
        return latest

    def promote(self, name: str, version: int, *, alias: str) -> None:
        """Point ``name@alias`` at ``version``, after verifying that version's bundle."""
        ref = ModelRef(check_name(name), version=check_version(version))
        check_alias(alias)
        entity = self._lookup(ref)
        self._fetch(entity)
        self._call(
            "set alias",
            lambda: self.client.set_registered_model_alias(ref.name, alias, str(ref.version)),
            idempotent=True,
        )
        self.cache.remember_alias(ref.name, alias, int(entity.version))

    # resolving --------------------------------------------------------------------------

    def resolve(self, reference: str | Path, *, allow_paths: bool = True) -> Path:
        """A local, verified bundle directory for ``NAME``, ``NAME/VERSION``, ``NAME@ALIAS`` or
        a bundle path (a ``Path``, or a string when ``allow_paths``; pass ``allow_paths=False`` for
        references from requests). Falls back to the cache when the registry is down."""
        if isinstance(reference, Path):
            return _local_bundle(reference)
        ref = parse_reference(reference, allow_paths=allow_paths)
        if isinstance(ref, Path):
            return _local_bundle(ref)
        try:
            entity = self._lookup(ref)
        except RegistryUnavailableError as exc:
            return self._resolve_cached(ref, exc)
        path = self._fetch(entity)
        if ref.version is None:
            self.cache.remember_alias(ref.name, ref.alias or "latest", int(entity.version))
        return path

    def _fetch(self, entity: Any) -> Path:
        name, version = str(entity.name), int(entity.version)
        expected = (entity.tags or {}).get(TAG_MANIFEST)
        if not expected:
            raise IntegrityError(
                f"{name}/{version}",
                f"version has no {TAG_MANIFEST} tag; it was not registered by churnscale",
            )
        path = self.cache.cached(name, version, expected_sha=expected)
        if path is None:
            path = self.cache.install(
                name,
                version,
                expected_sha=expected,
                fill=lambda staging: self._download(entity, staging),
            )
        self.cache.write_record(
            name,
            version,
            {"manifest_sha256": expected, "run_id": entity.run_id, "source": entity.source},
        )
        return path

    def _download(self, entity: Any, staging: Path) -> Path:
        source = str(entity.source)
        if source.startswith("runs:/"):
            run_id, _, artifact = source.removeprefix("runs:/").partition("/")
            fetch = lambda: self.client.download_artifacts(run_id, artifact, str(staging))  # noqa: E731
        else:
            import mlflow.artifacts

            fetch = lambda: mlflow.artifacts.download_artifacts(  # noqa: E731
                artifact_uri=source, dst_path=str(staging), tracking_uri=self._store_uri
            )
        return Path(self._call(f"download {entity.name}/{entity.version}", fetch))

    def _resolve_cached(self, ref: ModelRef, error: RegistryUnavailableError) -> Path:
        version, via = ref.version, ""
        if version is None:
            entry = self.cache.alias(ref.name, ref.alias or "latest")
            if entry is None:
                raise RegistryUnavailableError(
                    self.uri, f"{error.reason}; no cached mapping for {ref}"
                ) from error
            version, via = (
                int(entry["version"]),
                f" ({ref} as last resolved at {entry['resolved']})",
            )
        record = self.cache.read_record(ref.name, version)
        path = record and self.cache.cached(
            ref.name, version, expected_sha=str(record.get("manifest_sha256"))
        )
        if not path:
            raise RegistryUnavailableError(
                self.uri, f"{error.reason}; no verified cached copy of {ref.name}/{version}"
            ) from error
        _log.warning(
            "registry %s unreachable; using cached bundle %s/%s%s at %s",
            self.uri,
            ref.name,
            version,
            via,
            path,
        )
        return path


def _aliases_by_version(aliases: Mapping[str, Any] | None) -> dict[int, tuple[str, ...]]:
    by_version: dict[int, list[str]] = {}
    for alias, version in (aliases or {}).items():
        by_version.setdefault(int(version), []).append(alias)
    return {v: tuple(sorted(a)) for v, a in by_version.items()}


def _local_bundle(path: Path) -> Path:
    if not path.is_dir():
        raise ModelNotFoundError(str(path), "no bundle directory at this path")
    verify_directory(path)
    return path.resolve()
