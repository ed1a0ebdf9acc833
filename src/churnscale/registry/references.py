"""Model references typed by users: ``NAME``, ``NAME/VERSION``, ``NAME@ALIAS`` or a bundle path.

Names, versions and aliases are validated before they reach the registry or the file system,
so a reference can never name a directory outside the bundle cache (no ``..``, no separators,
no percent-encoding, positive integer versions only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from churnscale.exceptions import ConfigError

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,100}")
_VERSIONED = re.compile(r"([^/@]*)/([+-]?\d+)")
_RESERVED_ALIAS = re.compile(r"(latest|v\d+)", re.IGNORECASE)
NAME_RULE = "1-100 characters from A-Z a-z 0-9 _ . - and no '..'"
ALIAS_RULE = "1-100 characters from A-Z a-z 0-9 _ - (not 'latest' or 'v<number>')"
FORMS = "NAME, NAME/VERSION, NAME@ALIAS or a bundle directory"


@dataclass(frozen=True)
class ModelRef:
    """A registered model: a fixed ``version``, an ``alias``, or (neither) the latest version."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe registered-model name, else raise ConfigError."""
    if not _NAME.fullmatch(name) or ".." in name or name.strip(".") == "":
        raise ConfigError("model name", expected=NAME_RULE, received=name)
    return name


def check_version(version: object) -> int:
    """Return ``version`` as a positive int (from an int or a decimal string)."""
    text = str(version).strip()
    if isinstance(version, bool) or not re.fullmatch(r"[+-]?\d+", text) or int(text) < 1:
        raise ConfigError("model version", expected="a positive integer", received=version)
    return int(text)


def check_alias(alias: str) -> str:
    """Return ``alias`` if MLflow accepts it and it is safe as a file name."""
    if not _ALIAS.fullmatch(alias) or _RESERVED_ALIAS.fullmatch(alias):
        raise ConfigError("model alias", expected=ALIAS_RULE, received=alias)
    return alias


def looks_like_path(text: str) -> bool:
    """Whether a reference names a directory: a separator, or a leading ``.`` or ``~``."""
    return "/" in text or "\\" in text or text.startswith((".", "~"))


def parse_reference(text: str, *, allow_paths: bool = True) -> ModelRef | Path:
    """Parse a model reference; paths (with a separator or a leading ``.``/``~``) only if allowed.

    >>> parse_reference("churn@champion")
    ModelRef(name='churn', version=None, alias='champion')
    >>> str(parse_reference("churn/3"))
    'churn/3'
    """
    if not text.strip():
        raise ConfigError("model reference", expected=FORMS, received=text)
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(check_name(name), alias=check_alias(alias))
    versioned = _VERSIONED.fullmatch(text)
    if versioned:
        return ModelRef(check_name(versioned[1]), version=check_version(versioned[2]))
    if looks_like_path(text):
        if not allow_paths:
            raise ConfigError(
                "model reference", expected="NAME, NAME/VERSION or NAME@ALIAS", received=text
            )
        return Path(text).expanduser()
    return ModelRef(check_name(text))
