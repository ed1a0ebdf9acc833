"""R32 (issue 15 item 4): credentials in URI-bearing settings never reach output, logs or answers.

Pass figure: a distinct secret planted in each of the MLflow tracking URI (``user:pw@`` and a
PostgreSQL ``?password=``), the S3 endpoint, a Redis and a NATS stream URI and an Optuna
PostgreSQL storage URL is absent from the CLI's stdout and stderr and from every log record
(the commands fail or succeed as they would, through the console script's entry point); a
live ``churnscale serve`` whose registry URI holds a secret answers ``/admin/reload`` and logs
the failure without it. On 866115b MLflow's own text repeats the tracking password in the
CLI, in the ``/admin/reload`` JSON and in the server log, and ``?password=`` is never masked.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest
from rel_support import make_dataset
from reliability_server import ADMIN_KEY, Server, bearer, start, stop

from churnscale.cli import main
from churnscale.redaction import MASK, install_log_redaction, redact, remember_uri

pytestmark = pytest.mark.reliability

PG = "postgresql://postgres@127.0.0.1:5432"


def secret() -> str:
    return f"S3cr{uuid.uuid4().hex[:12]}"


def test_redact_masks_every_uri_form() -> None:
    pw = secret()
    cases = {
        f"http://user:{pw}@mlflow:5000/api": "http://user:***@mlflow:5000/api",
        f"{PG}/db?sslmode=require&password={pw}": f"{PG}/db?sslmode=require&password=***",
        f"redis://:{pw}@cache:6379/0?stream=s": "redis://:***@cache:6379/0?stream=s",
        f"nats://{pw}@nats:4222?subject=x": "nats://***@nats:4222?subject=x",
        f"host=db user=u password={pw} dbname=x": "host=db user=u password=*** dbname=x",
    }
    for text, masked in cases.items():
        assert redact(f"failed: {text} (retry)") == f"failed: {masked} (retry)"
    token = secret()
    remember_uri(f"https://ci:{token}%2Fx@mlflow.example.com")
    assert token not in redact(f"decoded {token}/x, encoded {token}%2Fx")


def test_log_records_are_redacted_with_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    pw = secret()
    try:
        raise ConnectionError(f"cannot reach postgresql://u@db/x?password={pw}")
    except ConnectionError:
        logging.getLogger("mlflow.store").exception("engine for %s", f"http://a:{pw}@h")
    text = caplog.text
    assert pw not in text and "password=***" in text and "http://a:***@h" in text


def _cli(
    args: list[str], env: dict[str, str], *, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["churnscale", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, " ".join(args)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"churnscale_r32_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"{PG}/postgres", connect_timeout=5)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_the_cli_never_prints_a_planted_secret(
    tmp_path: Path,
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("CHURNSCALE_ONLINE_CHECKPOINT_KEY", raising=False)
    dataset = make_dataset(tmp_path / "data", 1_000)
    secrets = {name: secret() for name in ("http", "pg", "s3", "redis", "nats", "optuna")}
    runs = [
        (["models", "list"], {"CHURNSCALE_TRACKING_URI": f"http://u:{secrets['http']}@127.0.0.1:1"}),
        (["models", "list"],
         {"CHURNSCALE_TRACKING_URI": f"{PG}/{fresh_database}?password={secrets['pg']}"}),
        (["ingest", "s3://bucket/x.csv", "--out", str(tmp_path / "o")],
         {"CHURNSCALE_S3_ENDPOINT_URL": f"http://key:{secrets['s3']}@127.0.0.1:1"}),
        (["learn", "--stream", f"redis://:{secrets['redis']}@127.0.0.1:1/0?stream=s",
          "--model", "m", "--target", "churned"], {}),
        (["learn", "--stream", f"nats://{secrets['nats']}@127.0.0.1:1?subject=x",
          "--model", "m", "--target", "churned"], {}),
        (["tune", str(dataset), "--target", "churned", "--trials", "1",
          "--storage", f"{PG}/no_such_db_r32?password={secrets['optuna']}"], {}),
    ]  # fmt: skip
    seen = []
    for args, env in runs:
        code, shown = _cli(args, env, monkeypatch=monkeypatch)
        out, err = capfd.readouterr()
        seen.append((shown, code, out + err + caplog.text))
        caplog.clear()
    for (shown, code, text), planted in zip(seen, secrets.values(), strict=True):
        assert planted not in text, f"{shown}: {text}"
        assert "Traceback" not in text, f"{shown}: {text}"
        assert code in (0, 2), f"{shown} exited {code}: {text}"
        assert "127.0.0.1" in text or "s3://bucket" in text, f"{shown} did not get far: {text}"
    assert "password=***" in seen[1][2]  # the PostgreSQL store was used and named, masked
    print(f"R32: {len(runs)} CLI runs with a planted secret each: 0 leaked")


@pytest.fixture
def secret_registry_server(rel_bundle: Path, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    pw = secret()
    env = {
        "CHURNSCALE_HOME": str(tmp_path / "home"),
        "CHURNSCALE_TRACKING_URI": f"http://user:{pw}@127.0.0.1:1",
        "CHURNSCALE_ADMIN_API_KEYS": ADMIN_KEY,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    server = start(tmp_path / "server.log", env, "--model", str(rel_bundle))
    try:
        yield server, pw
    finally:
        stop(server)


def test_the_server_never_returns_or_logs_it(secret_registry_server: tuple[Server, str]) -> None:
    server, pw = secret_registry_server
    bodies = []
    for model in ("churn/1", "churn@champion"):
        answer = httpx.post(
            f"{server.url}/admin/reload", json={"model": model}, headers=bearer(ADMIN_KEY),
            timeout=60,
        )  # fmt: skip
        assert answer.status_code == 503, answer.text
        bodies.append(answer.text)
    stop(server)
    log = server.output()
    assert "reload failed" in log and "127.0.0.1:1" in log
    for text in (*bodies, log):
        assert pw not in text and MASK in text, text
    print(f"R32: 2 failed reloads: 0 secrets in {len(bodies)} answers and the server log")
