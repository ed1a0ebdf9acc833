"""The MLflow client, imported lazily and quietly, and its errors translated to churnscale's.

MLflow takes one to two seconds to import, so nothing here imports it at module level. Its
chatter (alembic migration logs, "View run at" links printed to stdout) is switched off.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from churnscale.exceptions import ChurnscaleError, ModelNotFoundError, RegistryUnavailableError
from churnscale.redaction import redact as redact_text
from churnscale.redaction import remember_uri

T = TypeVar("T")
_log = logging.getLogger(__name__)
_NOISY_LOGGERS = ("mlflow", "alembic", "alembic.runtime.migration", "sqlalchemy.engine")
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}
_UNAVAILABLE = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"}
_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")
SQLITE_BUSY_TIMEOUT_S = 30
_LOCK_RETRIES = 8


#: MLflow's HTTP defaults (7 retries, backoff factor 2, 120 s timeout) keep a client waiting for
#: minutes on a dead server; these fail over to the bundle cache in seconds. MLflow's own
#: environment variables, when set, win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def quiet_mlflow() -> None:
    """Stop MLflow's URL printing and lower its loggers (and alembic's) to WARNING."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def is_database_uri(uri: str) -> bool:
    """True when MLflow talks to a database directly (artifacts then live under our home)."""
    return uri.split(":", 1)[0].split("+", 1)[0] in _DB_SCHEMES


def redact(uri: str) -> str:
    """``uri`` with its credentials masked, for messages and logs (see
    :func:`churnscale.redaction.redact`: user-part passwords and ``?password=`` alike)."""
    remember_uri(uri)
    return redact_text(uri)


def with_psycopg2(uri: str) -> str:
    """``postgresql://`` (or ``postgres://``) pinned to the installed driver, psycopg2:
    SQLAlchemy 2.1 would pick psycopg 3, which is not installed. Other URIs as they are."""
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + uri.split("://", 1)[1]
    return uri


def store_uri(uri: str) -> str:
    """The URI handed to MLflow: PostgreSQL pinned to psycopg2 (:func:`with_psycopg2`), SQLite
    given a busy timeout and WAL so concurrent processes wait, not fail."""
    if uri.startswith(("postgresql://", "postgres://")):
        return with_psycopg2(uri)
    if not uri.startswith("sqlite:///"):
        return uri
    path, _, query = uri.removeprefix("sqlite:///").partition("?")
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.close()
    if "timeout=" in query:
        return uri
    return f"{uri}{'&' if query else '?'}timeout={SQLITE_BUSY_TIMEOUT_S}"


def new_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` used for both tracking and the model registry."""
    quiet_mlflow()
    # no tqdm bars on stderr while downloading bundles (MLflow shows them when tqdm is installed)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    quiet_mlflow()  # importing mlflow sets its loggers to INFO; the client may migrate the store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return client


def error_code(exc: BaseException) -> str | None:
    """The MLflow error code of an exception, if it is an ``MlflowException``."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def _is_write_race(exc: BaseException) -> bool:
    """A unique-key conflict: two writers inserted the same row (e.g. an alias) at once."""
    text = str(exc)
    return "UNIQUE constraint failed" in text or "duplicate key value violates unique" in text


def call(
    uri: str,
    what: str,
    fn: Callable[[], T],
    *,
    reference: str | None = None,
    idempotent: bool = False,
) -> T:
    """Run one registry call; map "not found" to ModelNotFoundError, other failures to
    RegistryUnavailableError, and retry while a SQLite store is locked by another writer.
    An ``idempotent`` call (setting an alias) is also retried when it lost an insert race:
    MLflow checks then inserts, so two concurrent first writers collide on the unique key."""
    for attempt in range(_LOCK_RETRIES):
        try:
            return fn()
        except Exception as exc:
            retry = _is_locked(exc) or (idempotent and _is_write_race(exc))
            if retry and attempt + 1 < _LOCK_RETRIES:
                time.sleep(random.uniform(0.05, 0.2) * 2**attempt)
                continue
            translated = _translate(uri, what, exc, reference=reference)
            if translated is exc:
                raise
            raise translated from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _translate(uri: str, what: str, exc: Exception, *, reference: str | None) -> Exception:
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import DBAPIError

    code = error_code(exc)
    if isinstance(exc, ChurnscaleError):
        return exc
    if isinstance(exc, OSError | DBAPIError) or _is_connection_failure(exc):
        return RegistryUnavailableError(uri, f"{what} failed: {_first_line(str(exc))}")
    if isinstance(exc, MlflowException) and code in _NOT_FOUND and reference:
        return ModelNotFoundError(reference, _first_line(exc.message))
    if isinstance(exc, MlflowException) and code != "RESOURCE_ALREADY_EXISTS":
        return ChurnscaleError(f"model registry: {what} failed: {_first_line(exc.message)}")
    return exc


def _is_connection_failure(exc: Exception) -> bool:
    import requests

    if isinstance(exc, requests.RequestException):
        return True
    return error_code(exc) in _UNAVAILABLE and "API request to" in str(exc)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:300]
