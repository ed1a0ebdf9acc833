from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnscale.config import Settings
from churnscale.exceptions import ConfigError, UnsafePathError
from churnscale.serving.security import (
    AccessRole,
    ApiKeys,
    presented_key,
    safe_model_path,
)

PREDICT_1 = "p" * 16 + "-first"
PREDICT_2 = "p" * 16 + "-second"
ADMIN = "a" * 24


@pytest.fixture
def keys() -> ApiKeys:
    return ApiKeys.parse(predict=f"{PREDICT_1}, {PREDICT_2}", admin=ADMIN)


@pytest.mark.parametrize(
    ("presented", "role", "status", "detail"),
    [
        (PREDICT_1, AccessRole.PREDICT, 200, "predict allowed"),
        (PREDICT_2, AccessRole.PREDICT, 200, "predict allowed"),
        (ADMIN, AccessRole.PREDICT, 200, "predict allowed"),
        (ADMIN, AccessRole.ADMIN, 200, "admin allowed"),
        (None, AccessRole.PREDICT, 401, "missing API key"),
        ("", AccessRole.ADMIN, 401, "missing API key"),
        (PREDICT_1, AccessRole.ADMIN, 403, "not valid for admin"),
        (PREDICT_1[:-1], AccessRole.PREDICT, 403, "not valid for predict"),
        (PREDICT_1 + "x", AccessRole.PREDICT, 403, "not valid for predict"),
        ("ключ-не-тот-совсем", AccessRole.PREDICT, 403, "not valid for predict"),
    ],
)
def test_key_decisions(
    keys: ApiKeys, presented: str | None, role: AccessRole, status: int, detail: str
) -> None:
    decision = keys.check(presented, role)
    assert (decision.status, decision.allowed) == (status, status == 200)
    assert detail in decision.detail
    assert decision.headers() == ({"WWW-Authenticate": "Bearer"} if status == 401 else {})


def test_no_keys_opens_predict_and_closes_admin() -> None:
    keys = ApiKeys.parse(predict=None, admin="  ")
    assert keys.check(None, AccessRole.PREDICT).status == 200
    decision = keys.check(ADMIN, AccessRole.ADMIN)
    assert (decision.status, decision.detail) == (
        403,
        "admin API disabled: no admin keys are configured",
    )


def test_keys_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNSCALE_API_KEYS", f"{PREDICT_1},{PREDICT_2}")
    monkeypatch.setenv("CHURNSCALE_ADMIN_API_KEYS", ADMIN)
    keys = ApiKeys.from_settings(Settings())
    assert len(keys.predict) == 2 and len(keys.admin) == 1
    assert keys.check(PREDICT_2, AccessRole.PREDICT).allowed
    assert PREDICT_1 not in repr(Settings())  # secrets stay out of logs


@pytest.mark.parametrize(
    ("predict", "message"),
    [
        ("short", r"CHURNSCALE_API_KEYS: expected keys of at least 16 .*key 1 of 5 character"),
        (f"{PREDICT_1},,", r"key 2 of 0 character"),
        (f"{PREDICT_1},with space in the key", r"key 2 of 21 character"),
    ],
)
def test_bad_keys_are_refused_without_echoing_them(predict: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        ApiKeys.parse(predict=predict, admin=None)
    assert "with space" not in str(caught.value)


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer   abc  ", None, "abc"),
        ("Basic abc", "xyz", "xyz"),
        ("Bearer ", None, None),
        (None, "  ", None),
        (None, None, None),
    ],
)
def test_presented_key(
    authorization: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert presented_key(authorization=authorization, x_api_key=x_api_key) == expected


# --- model paths -------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    (models / "churn" / "3").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (models / "escape").symlink_to(tmp_path / "outside")
    (models / "churn" / "out").symlink_to(tmp_path / "outside")
    (models / "alias").symlink_to(models / "churn")
    return models


def test_plain_names_resolve_under_root(root: Path) -> None:
    assert safe_model_path(root, "churn", "3") == (root / "churn" / "3").resolve()
    assert safe_model_path(root, "churn") == (root / "churn").resolve()
    assert safe_model_path(root, "alias", "3") == (root / "churn" / "3").resolve()
    assert safe_model_path(root, "not-yet", "v1.2") == (root / "not-yet" / "v1.2").resolve()


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("..", None, r"name '\.\.': contains a parent-directory reference"),
        ("churn", "..", r"version '\.\.': contains a parent-directory"),
        ("../../etc", None, "contains a path separator"),
        ("%2e%2e", None, "percent-encoded"),
        ("%252e%252e", None, "percent-encoded"),
        ("/etc/passwd", None, "absolute paths are not allowed"),
        ("..\\..\\windows", None, "contains a backslash"),
        ("churn\x00.txt", None, "contains a NUL byte"),
        ("c" * 129, None, "longer than 128 characters"),
        ("", None, "must not be empty"),
        (".hidden", None, "must not start with '.'"),
        ("churn\n", None, "allowed characters"),
        ("\uff0e\uff0e", None, "allowed characters"),  # fullwidth dots
        ("C:", None, "allowed characters"),
        ("escape", None, "resolves outside the model root"),
        ("churn", "out", "resolves outside the model root"),
    ],
)
def test_unsafe_paths_are_refused(root: Path, name: str, version: str | None, message: str) -> None:
    with pytest.raises(UnsafePathError, match=message) as caught:
        safe_model_path(root, name, version)
    assert caught.value.http_status == 400


def test_missing_root_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model root: expected an existing directory"):
        safe_model_path(tmp_path / "nope", "churn")


_TRAVERSAL = [
    "..", "../", "..\\", "%2e%2e", "%2E%2E%2F", "%252e%252e", "..%2f", "%c0%ae", "/", "\\",
    "\x00", "/etc/passwd", "....//", ".%2e", "%u002e", "~/", "C:\\",
]  # fmt: skip
_PIECES = st.sampled_from(_TRAVERSAL) | st.text(
    alphabet="abcXYZ019._-@+%/\\\x00~:\uff0e", min_size=0, max_size=12
)

_PLAIN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,20}", fullmatch=True)


def _is_traversal(value: str) -> bool:
    return any(marker in value for marker in ("..", "/", "\\", "%", "\x00")) or value.startswith(
        "."
    )


@settings(
    max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=_PLAIN | st.lists(_PIECES, min_size=1, max_size=4).map("".join),
    version=st.none() | st.lists(_PIECES, min_size=1, max_size=3).map("".join),
)
def test_no_accepted_path_leaves_the_root(root: Path, name: str, version: str | None) -> None:
    attempt = _is_traversal(name) or (version is not None and _is_traversal(version))
    try:
        path = safe_model_path(root, name, version)
    except UnsafePathError:
        return
    assert not attempt, (name, version)
    assert path.is_relative_to(root.resolve())
    assert os.path.realpath(path).startswith(str(root.resolve()) + os.sep)


FEEDBACK = "f" * 20


@pytest.mark.parametrize(
    ("keys", "presented", "status", "detail"),
    [
        (ApiKeys.parse(predict=None, admin=None), None, 200, "feedback API open"),
        (ApiKeys.parse(predict=PREDICT_1, admin=None), PREDICT_1, 403, "feedback API disabled"),
        (ApiKeys.parse(predict=PREDICT_1, admin=ADMIN), PREDICT_1, 403, "not valid for feedback"),
        (ApiKeys.parse(predict=PREDICT_1, admin=ADMIN), ADMIN, 200, "feedback allowed"),
        (
            ApiKeys.parse(predict=PREDICT_1, admin=None, feedback=FEEDBACK),
            FEEDBACK,
            200,
            "feedback allowed",
        ),
        (ApiKeys.parse(predict=None, admin=None, feedback=FEEDBACK), None, 401, "missing API"),
    ],
)
def test_feedback_scope(keys: ApiKeys, presented: str | None, status: int, detail: str) -> None:
    decision = keys.check(presented, AccessRole.FEEDBACK)
    assert decision.status == status
    assert detail in decision.detail


def test_a_feedback_key_cannot_predict() -> None:
    keys = ApiKeys.parse(predict=PREDICT_1, admin=None, feedback=FEEDBACK)
    assert keys.check(FEEDBACK, AccessRole.PREDICT).status == 403
