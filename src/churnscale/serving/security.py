"""Security primitives of the service: API key checks and model paths that cannot escape.

Keys are compared in constant time: the presented key and every configured key are reduced to
SHA-256 digests (so their lengths leak nothing) and compared with :func:`hmac.compare_digest`
against *every* key of the role, without stopping at the first match.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr

from churnscale.config import Settings
from churnscale.exceptions import ConfigError, ModelNotFoundError, UnsafePathError

MIN_KEY_LENGTH = 16
MAX_NAME_LENGTH = 128
_KEY_PATTERN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


class AccessRole(StrEnum):
    """What a request wants to do: predict, post outcome labels, or administer models."""

    PREDICT = "predict"
    FEEDBACK = "feedback"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """The outcome of a key check: 200 (allowed), 401 (no key) or 403 (wrong key)."""

    status: int
    detail: str

    @property
    def allowed(self) -> bool:
        """Whether the request may go on."""
        return self.status == 200

    def headers(self) -> dict[str, str]:
        """Response headers that go with the decision (a 401 names the scheme to use)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """SHA-256 digests of the predict, feedback and admin keys; admin keys may do all three.

    Feedback (labels that move the live quality figures) has its own scope: a predict key
    cannot post it. With no key of any role configured the service is open (predict and
    feedback; admin stays disabled); once any key is configured, feedback needs a feedback or
    an admin key, and is disabled (403) when neither is configured.
    """

    predict: tuple[bytes, ...] = ()
    admin: tuple[bytes, ...] = ()
    feedback: tuple[bytes, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """Keys from ``CHURNSCALE_API_KEYS``, ``CHURNSCALE_ADMIN_API_KEYS`` and
        ``CHURNSCALE_FEEDBACK_API_KEYS``."""

        def text(secret: SecretStr | None) -> str | None:
            return secret.get_secret_value() if secret else None

        return cls.parse(
            predict=text(settings.api_keys),
            admin=text(settings.admin_api_keys),
            feedback=text(settings.feedback_api_keys),
        )

    @classmethod
    def parse(
        cls, *, predict: str | None, admin: str | None, feedback: str | None = None
    ) -> ApiKeys:
        """Comma-separated keys per role; each printable ASCII of at least 16 characters."""
        return cls(
            predict=_parse_keys(predict, setting="CHURNSCALE_API_KEYS"),
            admin=_parse_keys(admin, setting="CHURNSCALE_ADMIN_API_KEYS"),
            feedback=_parse_keys(feedback, setting="CHURNSCALE_FEEDBACK_API_KEYS"),
        )

    @property
    def configured(self) -> bool:
        """Whether any key of any role is configured (else the service is open)."""
        return bool(self.predict or self.admin or self.feedback)

    def check(self, presented: str | None, role: AccessRole) -> AuthDecision:
        """Decide a request that presented ``presented`` (None when it sent no key)."""
        if role is AccessRole.ADMIN and not self.admin:
            return AuthDecision(403, "admin API disabled: no admin keys are configured")
        if role is AccessRole.FEEDBACK and not self.configured:
            return AuthDecision(200, "feedback API open: no keys are configured")
        if role is AccessRole.FEEDBACK and not (self.feedback or self.admin):
            return AuthDecision(403, "feedback API disabled: no feedback keys are configured")
        allowed = {
            AccessRole.ADMIN: self.admin,
            AccessRole.FEEDBACK: self.feedback + self.admin,
            AccessRole.PREDICT: self.predict + self.admin,
        }[role]
        if role is AccessRole.PREDICT and not self.predict:
            return AuthDecision(200, "predict API open: no predict keys are configured")
        if not presented:
            return AuthDecision(401, "missing API key: send 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        match = False
        for key in allowed:
            match |= hmac.compare_digest(digest, key)
        if not match:
            return AuthDecision(403, f"API key not valid for {role.value}")
        return AuthDecision(200, f"{role.value} allowed")


HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/ping", "/v2/health/live", "/v2/health/ready"})
FEEDBACK_PATH = "/v1/feedback"


def route_role(path: str) -> AccessRole | None:
    """The role a path needs: None for health probes, ADMIN under ``/admin``, FEEDBACK for
    ``/v1/feedback``, else PREDICT.

    >>> route_role("/healthz") is None, route_role("/admin/reload"), route_role("/metrics")
    (True, <AccessRole.ADMIN: 'admin'>, <AccessRole.PREDICT: 'predict'>)
    >>> route_role("/v1/feedback")
    <AccessRole.FEEDBACK: 'feedback'>
    """
    if path in HEALTH_PATHS:
        return None
    if path == FEEDBACK_PATH:
        return AccessRole.FEEDBACK
    if path == "/admin" or path.startswith("/admin/"):
        return AccessRole.ADMIN
    return AccessRole.PREDICT


def key_in_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of raw ASGI headers (``Authorization: Bearer`` first, then ``X-API-Key``)."""
    authorization = api_key = None
    for name, value in headers:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    return presented_key(authorization=authorization, x_api_key=api_key)


def presented_key(*, authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request sent: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

    >>> presented_key(authorization="Bearer s3cr3t", x_api_key=None)
    's3cr3t'
    """
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def _parse_keys(value: str | None, *, setting: str) -> tuple[bytes, ...]:
    """Digests of the comma-separated keys; error messages never repeat a key."""
    if value is None or not value.strip():
        return ()
    digests = []
    for position, raw in enumerate(value.split(","), start=1):
        key = raw.strip()
        if len(key) < MIN_KEY_LENGTH or not _KEY_PATTERN.fullmatch(key):
            raise ConfigError(
                setting,
                expected=f"keys of at least {MIN_KEY_LENGTH} printable ASCII characters",
                received=f"key {position} of {len(key)} character(s)",
            )
        digests.append(hashlib.sha256(key.encode()).digest())
    return tuple(digests)


def safe_model_path(root: Path, name: str, version: str | None = None) -> Path:
    """``root/name[/version]`` resolved, refusing anything that could leave ``root``.

    Refused with :class:`UnsafePathError`: empty or over-long parts, ``..``, percent-encoding
    (``%2e%2e``, ``%252e``), absolute paths, separators, backslashes, NUL and other characters
    outside ``[A-Za-z0-9._@+-]``, and symlinks that resolve outside the root. The check is made
    when called: open the returned path promptly.
    """
    _check_part(name, field="name")
    if version is not None:
        _check_part(version, field="version")
    try:
        base = root.resolve(strict=True)
    except OSError as exc:
        raise ConfigError(
            "model root", expected="an existing directory", received=str(root)
        ) from exc
    candidate = base / name if version is None else base / name / version
    resolved = candidate.resolve()
    if not resolved.is_relative_to(base):
        raise UnsafePathError(name, f"resolves outside the model root {base}")
    return resolved


def _check_part(value: str, *, field: str) -> None:
    """Refuse one path component that is not a plain name, saying what is wrong with it."""
    reason = _unsafe_reason(value)
    if reason is not None:
        raise UnsafePathError(value, reason, field=field)


def _unsafe_reason(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters ({len(value)})"
    checks = (
        ("\x00" in value, "contains a NUL byte"),
        ("%" in value, "percent-encoded characters are not allowed"),
        ("\\" in value, "contains a backslash"),
        (value.startswith("/"), "absolute paths are not allowed"),
        ("/" in value, "contains a path separator"),
        (".." in value, "contains a parent-directory reference '..'"),
        (value.startswith("."), "must not start with '.'"),
    )
    for failed, reason in checks:
        if failed:
            return reason
    if not _NAME_PATTERN.fullmatch(value):
        return "allowed characters are letters, digits and . _ @ + -"
    return None


def bundle_by_name(name: str, settings: Settings) -> Path:
    """A bundle directory under ``CHURNSCALE_MODEL_ROOT`` (names never leave the root)."""
    if settings.model_root is None:
        raise ModelNotFoundError(name, "no model root is configured (CHURNSCALE_MODEL_ROOT)")
    return safe_model_path(settings.model_root, name)
