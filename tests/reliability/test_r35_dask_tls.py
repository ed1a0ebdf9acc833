"""R35 (issue 15 item 9b): the Dask cluster speaks mutual TLS and only its own pods reach it.

Pass figure: a ``LocalCluster`` listening on ``tls://`` with certificates made here (a CA and
one certificate for scheduler, worker and client) trains a model through
``churnscale``'s ``cluster_client`` when Dask's TLS settings name the CA and the client
certificate; a ``tls://`` address without them is refused with one line naming the variable
(in process and from the CLI, exit 2); a client whose certificate another CA signed, and a plain
``tcp://`` client, are not let in. The manifests run the scheduler and workers with
``--protocol tls`` and the certificates of a Secret, and NetworkPolicies admit only workers and
``churnscale.io/dask-client`` pods to the scheduler. On 866115b the manifests have no
NetworkPolicy and a plain TCP scheduler, and a ``tls://`` address without certificates gets
Dask's own error after its connect time-out.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from distributed import LocalCluster
from distributed.comm import connect
from distributed.security import Security
from rel_support import make_dataset
from sklearn.metrics import roc_auc_score

from churnscale.cli import main
from churnscale.exceptions import ConfigError
from churnscale.training.cluster import ClusterAddress, cluster_client
from churnscale.training.distributed import train_distributed
from churnscale.training.local import TrainParams

pytestmark = pytest.mark.reliability

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
FAST = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5, threads=1)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_pki(root: Path, label: str) -> dict[str, str]:
    """A CA and one certificate it signs (for every role), as PEM files under ``root``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label}-ca"))
        .issuer_name(_name(f"{label}-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label}-node"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {
        "ca": root / f"{label}-ca.pem",
        "cert": root / f"{label}.crt",
        "key": root / f"{label}.key",
    }
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {k: str(v) for k, v in files.items()}


def _client_config(pki: dict[str, str]) -> dict[str, Any]:
    return {
        "distributed.comm.tls.ca-file": pki["ca"],
        "distributed.comm.tls.client.cert": pki["cert"],
        "distributed.comm.tls.client.key": pki["key"],
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("r35-pki")
    return {"good": _write_pki(root, "good"), "rogue": _write_pki(root, "rogue")}


@pytest.fixture(scope="module")
def tls_cluster(pki: dict[str, dict[str, str]]) -> Iterator[str]:
    """An in-process TLS cluster (one thread worker) on 127.0.0.1; yields its address."""
    good = pki["good"]
    security = Security(  # type: ignore[no-untyped-call]
        tls_ca_file=good["ca"],
        tls_scheduler_cert=good["cert"],
        tls_scheduler_key=good["key"],
        tls_worker_cert=good["cert"],
        tls_worker_key=good["key"],
        tls_client_cert=good["cert"],
        tls_client_key=good["key"],
        require_encryption=True,
    )
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tls://",
        host="127.0.0.1",
        security=security,
        dashboard_address=None,
    ) as cluster:
        address = str(cluster.scheduler_address)
        assert address.startswith("tls://")
        yield address


def test_a_tls_cluster_trains_with_the_configured_certificates(
    tls_cluster: str, pki: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    dataset = make_dataset(tmp_path, 3_000)
    with dask.config.set(_client_config(pki["good"])):
        with cluster_client(tls_cluster) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        result = train_distributed(dataset, cluster=tls_cluster, params=FAST)
    auc = float(roc_auc_score(result.y_holdout, result.scores))
    assert 0.6 < auc <= 1.0
    print(f"R35: trained on {tls_cluster} over mutual TLS; hold-out ROC-AUC {auc:.4f}")


NO_TLS = {"distributed.comm.tls.ca-file": None, "distributed.comm.tls.client.cert": None}


def test_tls_without_certificates_is_one_line(
    tls_cluster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with dask.config.set(NO_TLS):
        with pytest.raises(ConfigError, match="DASK_DISTRIBUTED__COMM__TLS__CA_FILE"):
            ClusterAddress.parse(tls_cluster)
    args = ["churnscale", "score", str(tmp_path), "--model", "churn"]
    args += ["--out", str(tmp_path / "out"), "--cluster", tls_cluster]
    monkeypatch.setattr(sys, "argv", args)
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path))
    with dask.config.set(NO_TLS), pytest.raises(SystemExit) as exited:
        main()  # the console script's entry point, in process
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert err.startswith("error: DASK_DISTRIBUTED__COMM__TLS__CA_FILE: expected a PEM"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_strangers_are_not_let_in(tls_cluster: str, pki: dict[str, dict[str, str]]) -> None:
    rogue = Security(  # type: ignore[no-untyped-call]
        tls_ca_file=pki["good"]["ca"],  # trusts the scheduler, but its own cert is not signed
        tls_client_cert=pki["rogue"]["cert"],
        tls_client_key=pki["rogue"]["key"],
        require_encryption=True,
    )

    async def attempt(address: str, **kwargs: Any) -> None:
        comm = await connect(address, timeout=3, **kwargs)
        try:  # the server checks the client certificate during the handshake; ask to be sure
            await comm.write({"op": "identity"})
            await asyncio.wait_for(comm.read(), 3)
        finally:
            comm.abort()

    good = Security(  # type: ignore[no-untyped-call]
        tls_ca_file=pki["good"]["ca"],
        tls_client_cert=pki["good"]["cert"],
        tls_client_key=pki["good"]["key"],
        require_encryption=True,
    )
    asyncio.run(attempt(tls_cluster, **good.get_connection_args("client")))  # the control
    with pytest.raises((OSError, asyncio.TimeoutError)):
        asyncio.run(attempt(tls_cluster, **rogue.get_connection_args("client")))
    with pytest.raises((OSError, asyncio.TimeoutError)):
        asyncio.run(attempt(tls_cluster.replace("tls://", "tcp://")))


def _resources() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in K8S.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "kind" in doc and "metadata" in doc:
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_the_manifests_use_tls_and_network_policies() -> None:
    resources = _resources()
    for name in ("dask-scheduler", "dask-worker"):
        (container,) = resources[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        for flag, path in (("--tls-ca-file", "ca.pem"), ("--tls-cert", "tls.crt"),
                           ("--tls-key", "tls.key")):  # fmt: skip
            assert args[args.index(flag) + 1] == f"/etc/dask-tls/{path}", name
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "true"
    scheduler = resources[("Deployment", "dask-scheduler")]["spec"]["template"]["spec"]
    assert scheduler["containers"][0]["args"][:2] == ["--protocol", "tls"]
    policy = resources[("NetworkPolicy", "dask-scheduler")]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "dask-scheduler"
    comm = next(
        rule for rule in policy["ingress"] if {"protocol": "TCP", "port": 8786} in rule["ports"]
    )
    allowed = [peer["podSelector"]["matchLabels"] for peer in comm["from"]]
    assert {
        "app.kubernetes.io/name": "churnscale",
        "app.kubernetes.io/component": "dask-worker",
    } in allowed
    assert {"churnscale.io/dask-client": "true"} in allowed and len(allowed) == 2
    workers = resources[("NetworkPolicy", "dask-worker")]["spec"]
    assert all("podSelector" in peer for rule in workers["ingress"] for peer in rule["from"])
    api = resources[("NetworkPolicy", "churnscale-api")]["spec"]
    http_and_grpc = [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 8001}]
    assert api["ingress"] == [{"ports": http_and_grpc}]  # the service's two ports, nothing else
