"""Every Kubernetes manifest in deploy/k8s, validated offline against the Kubernetes JSON schemas
(kubernetes-validate ships them), plus the project's own rules for probes, security and sizing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dask.utils import parse_bytes

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.37.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _all() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for p in MANIFESTS for d in _documents(p)}


def _pod(resource: dict[str, Any]) -> dict[str, Any]:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path.name} holds no resource"
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_schema_validation_catches_a_misspelt_field() -> None:
    deployment = _all()[("Deployment", "churnscale-api")]
    container = _pod(deployment)["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True  # capital S: not a field
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert {image["name"] for image in kustomization["images"]} == {"churnscale"}


def test_every_container_is_locked_down() -> None:
    for (kind, name), resource in _all().items():
        if kind == "Service" or kind not in {"Deployment", "CronJob"}:
            continue
        pod = _pod(resource)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"requests", "limits"} <= set(container["resources"]), name
            assert container["image"].split(":")[-1] not in {"latest", container["image"]}, name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


def test_api_probes_grace_period_and_secrets() -> None:
    deployment = _all()[("Deployment", "churnscale-api")]
    pod = _pod(deployment)
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = _env(container)
    drain = int(env["CHURNSCALE_DRAIN_TIMEOUT_S"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] == pre_stop + drain
    for variable, key in (
        ("CHURNSCALE_API_KEYS", "predict"),
        ("CHURNSCALE_ADMIN_API_KEYS", "admin"),
    ):
        assert env[variable] == {"secretKeyRef": {"name": "churnscale-api-keys", "key": key}}
    feedback = {"name": "churnscale-api-keys", "key": "feedback", "optional": True}
    assert env["CHURNSCALE_FEEDBACK_API_KEYS"] == {"secretKeyRef": feedback}
    assert env["CHURNSCALE_MODEL"] == "churn@champion"
    assert container["ports"][0]["containerPort"] == 8000
    assert container["ports"][1] == {"name": "grpc", "containerPort": 8001, "protocol": "TCP"}
    args = container["args"]
    assert args[args.index("--grpc-port") + 1] == "8001"


def test_service_hpa_and_pdb_point_at_the_api_pods() -> None:
    resources = _all()
    labels = resources[("Deployment", "churnscale-api")]["spec"]["template"]["metadata"]["labels"]
    selector = resources[("Service", "churnscale-api")]["spec"]["selector"]
    assert selector.items() <= labels.items()
    pdb = resources[("PodDisruptionBudget", "churnscale-api")]["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= labels.items()
    hpa = resources[("HorizontalPodAutoscaler", "churnscale-api")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "churnscale-api",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert (
        hpa["spec"]["minReplicas"]
        > resources[("PodDisruptionBudget", "churnscale-api")]["spec"]["minAvailable"]
    )


_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")


def _quantity_bytes(quantity: str) -> int:
    match = _QUANTITY.match(quantity)
    assert match, f"unsupported memory quantity {quantity!r}"
    power = {None: 0, "Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4}[match[2]]
    return int(match[1]) * 1024**power


def test_dask_worker_memory_limit_matches_its_container() -> None:
    resources = _all()
    worker = _pod(resources[("Deployment", "dask-worker")])["containers"][0]
    args = worker["args"]
    memory_limit = parse_bytes(args[args.index("--memory-limit") + 1])
    assert memory_limit == _quantity_bytes(worker["resources"]["limits"]["memory"])
    assert args[args.index("--nworkers") + 1] == "1"  # the limit is per worker process
    scheduler_ports = {p["port"] for p in resources[("Service", "dask-scheduler")]["spec"]["ports"]}
    assert args[0] == "tls://dask-scheduler:8786" and 8786 in scheduler_ports


def test_retrain_cronjob_runs_nightly_against_the_champion() -> None:
    cron = _all()[("CronJob", "churnscale-retrain")]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    minute, hour, *rest = cron["spec"]["schedule"].split()
    assert rest == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()
    (container,) = _pod(cron)["containers"]
    command = container["command"] + container["args"]
    assert command[:4] == ["churnscale", "retrain", "--model", "churn@champion"]
    assert command[command.index("--data") + 1].startswith("s3://")


def test_retrain_cronjob_arguments_parse_with_the_real_cli() -> None:
    import typer

    from churnscale.cli import app

    cron = _all()[("CronJob", "churnscale-retrain")]
    (container,) = _pod(cron)["containers"]
    assert container["command"] == ["churnscale", "retrain"]
    group = typer.main.get_command(app)
    command = group.commands["retrain"]  # type: ignore[attr-defined]
    context = command.make_context("retrain", list(container["args"]))
    assert context.params["model"] == "churn@champion"
    assert context.params["margin"] == 0.005
    assert context.params["time_column"] == "snapshot_date"
    assert context.params["mode"] == "continue"
    with pytest.raises(typer.TyperException, match="No such option: --no-such-flag"):
        command.make_context("retrain", [*container["args"], "--no-such-flag"])
