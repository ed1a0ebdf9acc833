from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnscale.artifacts import MANIFEST, verify_directory
from churnscale.exceptions import ConfigError, IntegrityError, ModelNotFoundError
from churnscale.registry import Registry
from conftest import BundleMaker, same_files


def _register(registry: Registry, bundle: Path, *, parent: str | None = None) -> int:
    with registry.run(experiment="churn", params={"learning_rate": 0.1}) as run:
        run.log_metrics({"auc": 0.75}, step=1)
        return run.register_bundle(bundle, name="churn", parent=parent).version


def _stored_bundle(registry: Registry, version: int) -> Path:
    """The bundle's files in the artifact store (not the cache)."""
    run_id = registry.show("churn", version).run_id
    uri = registry.client.get_run(run_id).info.artifact_uri
    return Path(uri.removeprefix("file://")) / "bundle"


def test_register_then_resolve_round_trip(registry: Registry, make_bundle: BundleMaker) -> None:
    bundle = make_bundle("a")
    with registry.run(experiment="churn", run_name="fit", params={"lr": 0.1}) as run:
        run.log_metrics({"auc": 0.81}, step=3)
        run.log_artifact(bundle / "metadata.json", artifact_path="extra")
        version = run.register_bundle(bundle, name="churn", description="first")
    assert (version.name, version.version, version.description) == ("churn", 1, "first")
    assert version.manifest_sha256 == verify_directory(bundle)["manifest_sha256"]
    assert version.data_fingerprint == "fp-00000000"
    recorded = registry.client.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.data.params == {"lr": "0.1"}
    assert recorded.data.metrics == {"auc": 0.81}
    resolved = registry.resolve("churn/1")
    assert resolved.is_relative_to(registry.cache.root)
    assert same_files(resolved, bundle)
    assert registry.resolve("churn") == resolved
    assert registry.resolve(str(bundle)) == bundle.resolve()
    assert registry.resolve(bundle) == bundle.resolve()


def test_aliases_promote_and_lineage(registry: Registry, make_bundle: BundleMaker) -> None:
    bundles = [make_bundle(label) for label in ("a", "b", "c")]
    versions = [_register(registry, bundles[0])]
    for bundle in bundles[1:]:
        versions.append(_register(registry, bundle, parent=f"churn/{versions[-1]}"))
    assert versions == [1, 2, 3]
    registry.promote("churn", 3, alias="champion")
    registry.promote("churn", 2, alias="challenger")
    assert same_files(registry.resolve("churn@champion"), bundles[2])
    assert same_files(registry.resolve("churn@challenger"), bundles[1])
    listed = {v.version: v for v in registry.list_models()}
    assert [listed[n].aliases for n in (1, 2, 3)] == [(), ("challenger",), ("champion",)]
    assert [listed[n].parent for n in (1, 2, 3)] == [None, "churn/1", "churn/2"]
    assert registry.show("churn").version == 3
    registry.promote("churn", 1, alias="champion")
    assert registry.show("churn", 1).aliases == ("champion",)
    assert same_files(registry.resolve("churn@champion"), bundles[0])


def test_unknown_models_and_bad_names(registry: Registry, make_bundle: BundleMaker) -> None:
    _register(registry, make_bundle("a"))
    with pytest.raises(ModelNotFoundError, match="model 'churn/7'"):
        registry.resolve("churn/7")
    with pytest.raises(ModelNotFoundError, match="model 'churn@champion'"):
        registry.resolve("churn@champion")
    with pytest.raises(ModelNotFoundError, match="model 'other': no registered versions"):
        registry.resolve("other")
    with pytest.raises(ModelNotFoundError, match="no bundle directory at this path"):
        registry.resolve("../x")
    with pytest.raises(IntegrityError, match=r"no manifest\.json"):
        registry.resolve(str(registry.cache.root.parent))
    for reference in ("../x", "%2e%2e", "/etc", "churn/0", "churn/-1", "churn@"):
        with pytest.raises(ConfigError, match=r"model (reference|name|version|alias): expected"):
            registry.resolve(reference, allow_paths=False)
    with pytest.raises(ConfigError, match="model version"):
        registry.promote("churn", 0, alias="champion")
    with pytest.raises(ConfigError, match="model alias"):
        registry.promote("churn", 1, alias="v2")
    with pytest.raises(ConfigError, match="model name"):
        registry.show("../churn")
    assert not any(registry.cache.root.glob("*/.*"))  # no staging directories left


def test_tampered_artifact_is_refused(registry: Registry, make_bundle: BundleMaker) -> None:
    _register(registry, make_bundle("a"))
    stored = _stored_bundle(registry, 1) / "model.txt"
    data = bytearray(stored.read_bytes())
    data[3] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="SHA-256 does not match"):
        registry.resolve("churn/1")
    with pytest.raises(IntegrityError, match="SHA-256 does not match"):
        registry.promote("churn", 1, alias="champion")
    assert registry.show("churn", 1).aliases == ()
    assert not (registry.cache.root / "churn" / "1").exists()


def test_swapped_artifact_is_refused(registry: Registry, make_bundle: BundleMaker) -> None:
    _register(registry, make_bundle("a"))
    stored = _stored_bundle(registry, 1)
    other = make_bundle("evil")
    for name in ("model.txt", "metadata.json", MANIFEST):
        (stored / name).write_bytes((other / name).read_bytes())
    verify_directory(stored)  # a valid bundle in itself, just not the registered one
    with pytest.raises(IntegrityError, match="not the one recorded on the registered version"):
        registry.resolve("churn/1")


def test_tampered_cache_copy_is_fetched_again(registry: Registry, make_bundle: BundleMaker) -> None:
    bundle = make_bundle("a")
    _register(registry, bundle)
    cached = registry.resolve("churn/1")
    (cached / "model.txt").write_text("swapped")
    assert registry.resolve("churn/1") == cached
    assert same_files(cached, bundle)


def test_failing_run_ends_failed_and_registers_nothing(
    registry: Registry, make_bundle: BundleMaker
) -> None:
    holder: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        with registry.run(experiment="churn") as run:
            holder.append(run.run_id)
            run.register_bundle(make_bundle("a"), name="churn")
            raise RuntimeError("boom")
    assert registry.run_status(holder[0]) == "FAILED"
    assert registry.list_models() == []
    with pytest.raises(ModelNotFoundError, match="no registered versions"):
        registry.resolve("churn")


def test_unpublished_bundle_fails_the_run(registry: Registry, tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "model.txt").write_text("x")
    holder: list[str] = []
    with pytest.raises(IntegrityError, match="not a published artifact"):
        with registry.run(experiment="churn") as run:
            holder.append(run.run_id)
            run.register_bundle(loose, name="churn")
    assert registry.run_status(holder[0]) == "FAILED"


def test_nested_runs_and_one_bundle_per_run(registry: Registry, make_bundle: BundleMaker) -> None:
    with registry.run(experiment="tune") as parent:
        with registry.run(experiment="tune", parent_run_id=parent.run_id, tags={"t": "1"}) as child:
            child.register_bundle(make_bundle("a"), name="churn", parent=None)
            with pytest.raises(ConfigError, match="one bundle per run"):
                child.register_bundle(make_bundle("b"), name="churn")
    tags = registry.client.get_run(child.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id and tags["t"] == "1"
    with pytest.raises(ConfigError, match="run id: expected an existing MLflow run"):
        with registry.run(experiment="tune", parent_run_id="0" * 32):
            pass
    with pytest.raises(ConfigError, match="model reference"):
        with registry.run(experiment="tune") as run:
            run.register_bundle(make_bundle("c"), name="churn", parent="../churn")


def test_alias_record_is_kept_beside_the_cache(
    registry: Registry, make_bundle: BundleMaker
) -> None:
    _register(registry, make_bundle("a"))
    registry.promote("churn", 1, alias="champion")
    registry.resolve("churn@champion")
    aliases = json.loads((registry.cache.root / "churn" / "aliases.json").read_text())
    assert aliases["champion"]["version"] == 1
    record = json.loads((registry.cache.root / "churn" / "1.json").read_text())
    assert record["manifest_sha256"] == registry.show("churn", 1).manifest_sha256
