"""Credentials kept out of every message churnscale prints, logs or returns.

Settings and flags carry URIs with secrets in them (``http://user:pw@mlflow``,
``postgresql://u@h/db?password=pw``, ``redis://:pw@h``, ``nats://token@h``), and the libraries
we wrap repeat those URIs in their own error text. :func:`redact` masks them wherever they
appear: the password (or lone token) of a URI's user part, secret-looking query parameters
and ``password=…`` pairs, and every secret :func:`remember` or :func:`remember_uri` was told
of (so a library that prints a password out of its URI, decoded or not, is caught too). It is
applied where
errors are wrapped (:class:`~churnscale.exceptions.ChurnscaleError` redacts its message) and
to every log record (:func:`install_log_redaction`, or :class:`RedactingFilter` on a handler).

Only the standard library is imported here: this module sits at the bottom of the layers.

>>> redact("http://user:s3cret@mlflow:5000/api")
'http://user:***@mlflow:5000/api'
>>> redact("postgresql://u@db/churn?sslmode=require&password=s3cret")
'postgresql://u@db/churn?sslmode=require&password=***'
>>> redact("nats://s3cret@nats:4222?subject=events")
'nats://***@nats:4222?subject=events'
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
#: ``scheme://userinfo@``: the user part of any URI (stops at ``/``, ``?``, ``#`` or space).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^/?#@\s'\"]+)@")
#: Names of query parameters and keyword pairs that hold secrets (``password``, ``db_pass``,
#: ``access_token``, ``api_key``, ``X-Amz-Signature``, …).
_SECRET_NAME = (
    r"(?:[A-Za-z0-9]+[_.\-])*(?:password|passwd|pwd|pass|secret|token|apikey|api[_\-]key|"
    r"secret[_\-]key|access[_\-]key|private[_\-]key|signature|credentials?|auth)"
)
#: ``password=…`` in query strings and libpq keyword strings (``host=h password=pw``).
_SECRET_PAIR = re.compile(
    rf"(?P<name>(?<![A-Za-z0-9_.\-]){_SECRET_NAME})(?P<sep>\s*=\s*)"
    r"(?P<value>[^\s&;,'\"()\[\]{}]+)",
    re.IGNORECASE,
)
#: Schemes whose lone user part (no colon) is a user name, not a token.
_USER_ONLY_SCHEMES = ("postgres", "mysql", "mssql", "oracle", "sqlite")
#: Values shorter than this are not searched for literally (too many false matches).
_MIN_LITERAL = 4

_lock = threading.Lock()
_known: set[str] = set()


def remember(*secrets: str | None) -> None:
    """Mask each of ``secrets`` (a key, a token: kept whole) wherever it appears later."""
    _keep(s for s in secrets if s)


def remember_uri(*uris: str | None) -> None:
    """Mask the credentials of ``uris`` wherever they appear later: a URI's password (or lone
    user token) and its secret-looking query values, each also percent-encoded and decoded.
    A value that is no URI holds no credential and is ignored."""
    _keep(secret for uri in uris if uri and "://" in uri for secret in _secrets_of(uri))


def remember_uris_in(words: Iterable[str]) -> None:
    """:func:`remember_uri` every URI with a user part or a query among ``words`` (argv)."""
    remember_uri(*(w for w in words if "://" in w and ("@" in w or "?" in w)))


def _keep(secrets: Iterable[str]) -> None:
    usable = {s for s in secrets if len(s) >= _MIN_LITERAL}
    if usable:
        with _lock:
            _known.update(usable)


def redact(text: str) -> str:
    """``text`` with every credential masked: URI user parts, secret pairs, known secrets."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(_mask_userinfo, text)
    return _SECRET_PAIR.sub(_mask_pair, text)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["info"].partition(":")
    if colon:  # user:password@ keeps the user name
        return f"{match['scheme']}{user}:{MASK}@"
    if match["scheme"].lower().startswith(_USER_ONLY_SCHEMES):
        return match.group(0)  # a database's lone user part is a role name
    return f"{match['scheme']}{MASK}@"  # elsewhere it may be a token (nats://TOKEN@host)


def _mask_pair(match: re.Match[str]) -> str:
    if match["value"] == MASK:
        return match.group(0)
    return f"{match['name']}{match['sep']}{MASK}"


def _secrets_of(value: str) -> set[str]:
    try:
        parts = urlsplit(value)
        password, username = parts.password, parts.username
    except ValueError:  # an unparsable port or netloc: fall back to the pattern alone
        match = _USERINFO.search(value)
        return {match["info"].partition(":")[2] or match["info"]} if match else set()
    raw: set[str] = set()
    if password:
        raw.add(password)
    elif username and not parts.scheme.lower().startswith(_USER_ONLY_SCHEMES):
        raw.add(username)  # a lone token (nats://TOKEN@host, https://TOKEN@host)
    for name, item in parse_qsl(parts.query, keep_blank_values=False):
        if re.fullmatch(_SECRET_NAME, name, re.IGNORECASE):
            raw.add(item)
    return {form for secret in raw for form in (secret, unquote(secret), quote(secret, safe=""))}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message and traceback (see :func:`scrub`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Redact ``record`` in place: its message with the arguments merged in, and its
    traceback text (kept in ``exc_text``, which formatters use as it is)."""
    if getattr(record, "_churnscale_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it for the handler to report
        return record
    cleaned = redact(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._churnscale_redacted = True
    return record


def install_log_redaction() -> None:
    """Redact every log record this process makes, from any logger and to any handler.

    A record factory rather than a filter on some handlers: libraries add their own handlers
    (MLflow, uvicorn), some after this runs, and all of them see the redacted record. Safe to
    call more than once.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_churnscale_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub(previous(*args, **kwargs))

    factory._churnscale_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
