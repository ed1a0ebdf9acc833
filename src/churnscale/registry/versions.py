"""``ModelVersion``: one registered version of a model, as churnscale reports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Tags churnscale records on every model version it registers.
TAG_MANIFEST = "manifest_sha256"
TAG_FINGERPRINT = "data_fingerprint"
TAG_PARENT = "parent_version"


@dataclass(frozen=True)
class ModelVersion:
    """A registered bundle: its name, number, aliases, lineage and checksum."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str
    manifest_sha256: str
    created: str
    parent: str | None
    description: str
    data_fingerprint: str | None = None

    @property
    def reference(self) -> str:
        """``NAME/VERSION``, the reference that always means this version."""
        return f"{self.name}/{self.version}"

    @classmethod
    def from_mlflow(cls, entity: Any, *, aliases: tuple[str, ...] = ()) -> ModelVersion:
        """Build from an ``mlflow.entities.model_registry.ModelVersion``."""
        tags: dict[str, str] = dict(entity.tags or {})
        created = datetime.fromtimestamp(entity.creation_timestamp / 1000, tz=UTC)
        return cls(
            name=entity.name,
            version=int(entity.version),
            aliases=tuple(sorted(set(aliases) | set(entity.aliases or ()))),
            run_id=entity.run_id or "",
            manifest_sha256=tags.get(TAG_MANIFEST, ""),
            created=created.isoformat(timespec="seconds"),
            parent=tags.get(TAG_PARENT),
            description=entity.description or "",
            data_fingerprint=tags.get(TAG_FINGERPRINT),
        )
