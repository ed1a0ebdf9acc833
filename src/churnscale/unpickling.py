"""Unpickling under watch: HMAC-checked loads and an audit hook that records every other one.

Nothing a user hands over is unpickled. The one place churnscale may unpickle (an online
learner's River checkpoint, which River can only save as a pickle) goes through
:func:`loads_signed`, which checks an HMAC-SHA256 of the bytes with a secret key *before*
``pickle.loads`` runs, and marks the load as trusted while it runs.

:class:`UnpicklingAudit` is a :func:`sys.addaudithook` hook on ``pickle.find_class`` (raised by
both pickle implementations for every global a pickle names): it records each event with the
churnscale modules on the caller's stack, so a test session can assert that the service, batch
scoring and online paths never unpickled anything outside :func:`loads_signed`. (Pickles of
plain builtins name no global and raise no event; every class instance, numpy array or River
model does.)
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from churnscale.exceptions import IntegrityError

#: Module prefixes whose unpickling must be HMAC-checked: the model layer (loading and
#: prediction, on every service path), the service, batch scoring, online.
WATCHED = (
    "churnscale.model",
    "churnscale.serving",
    "churnscale.scoring",
    "churnscale.commands.serve",
    "churnscale.commands.score",
    "churnscale.online",
    "churnscale.training.online",
)
#: Modules whose unpickling is Dask's own wire protocol between the client and the workers the
#: command itself started (task graphs and results), never a file or body a user hands over.
EXEMPT = ("churnscale.scoring.cluster",)
_TRUSTED: ContextVar[str | None] = ContextVar("churnscale_trusted_unpickling", default=None)


def sign(data: bytes, *, key: bytes) -> str:
    """Hex HMAC-SHA256 of ``data`` under ``key`` (store it beside a checkpoint)."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def loads_signed(data: bytes, *, signature: str, key: bytes, what: str) -> Any:
    """``pickle.loads(data)`` only if ``signature`` is its HMAC under ``key``; else IntegrityError.

    >>> blob = pickle.dumps({"n": 1})
    >>> loads_signed(blob, signature=sign(blob, key=b"k" * 32), key=b"k" * 32, what="demo")
    {'n': 1}
    """
    if not key:
        raise IntegrityError(what, "no HMAC key configured; refusing to unpickle")
    if not hmac.compare_digest(sign(data, key=key), signature):
        raise IntegrityError(what, "HMAC signature does not match; refusing to unpickle")
    token = _TRUSTED.set(what)
    try:
        return pickle.loads(data)
    finally:
        _TRUSTED.reset(token)


def loads_authenticated(data: bytes, *, message: bytes, mac: bytes, key: bytes, what: str) -> Any:
    """``pickle.loads(data)`` only if ``mac`` is the HMAC-SHA256 of ``message`` under ``key``
    and ``data`` is the tail of ``message`` (a signed container such as an online checkpoint)."""
    if not key:
        raise IntegrityError(what, "no HMAC key configured; refusing to unpickle")
    if not message.endswith(data):
        raise IntegrityError(what, "the pickle is not part of the signed message")
    if not hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), mac):
        raise IntegrityError(what, "HMAC signature does not match; refusing to unpickle")
    token = _TRUSTED.set(what)
    try:
        return pickle.loads(data)
    finally:
        _TRUSTED.reset(token)


@dataclass(frozen=True)
class UnpicklingEvent:
    """One global a pickle load resolved, who asked, and whether an HMAC check came first."""

    module: str
    name: str
    trusted: str | None
    callers: tuple[str, ...]

    def watched(self, prefixes: tuple[str, ...] = WATCHED) -> bool:
        """Whether a caller on the stack is in one of the watched paths (and not exempt)."""
        if any(c in EXEMPT for c in self.callers):
            return False
        return any(c == p or c.startswith(p + ".") for c in self.callers for p in prefixes)


class UnpicklingAudit:
    """Counts ``pickle.find_class`` audit events once :meth:`install` is called, and keeps
    those made in a watched path or under :func:`loads_signed` (the rest are only counted)."""

    def __init__(
        self,
        *,
        on_event: Callable[[UnpicklingEvent], None] | None = None,
        prefixes: tuple[str, ...] = WATCHED,
    ) -> None:
        self.events: list[UnpicklingEvent] = []
        self.seen = 0
        self.active = False
        self.prefixes = prefixes
        self._on_event = on_event

    def install(self) -> UnpicklingAudit:
        """Add the hook (audit hooks cannot be removed: :attr:`active` switches it off)."""
        if not self.active:
            self.active = True
            sys.addaudithook(self._hook)
        return self

    def violations(self) -> list[UnpicklingEvent]:
        """Loads in a watched path that did not go through :func:`loads_signed`."""
        return [e for e in self.events if e.trusted is None and e.watched(self.prefixes)]

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "pickle.find_class" or not self.active:
            return
        self.seen += 1
        found = UnpicklingEvent(str(args[0]), str(args[1]), _TRUSTED.get(), _callers())
        if found.trusted is not None or found.watched(self.prefixes):
            self.events.append(found)
        if self._on_event is not None:
            self._on_event(found)


def _callers() -> tuple[str, ...]:
    """The distinct churnscale modules on the current stack, innermost first."""
    names: list[str] = []
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith("churnscale") and module not in names:
            names.append(module)
        frame = frame.f_back  # type: ignore[assignment]
    return tuple(names)


__all__ = [
    "WATCHED",
    "UnpicklingAudit",
    "UnpicklingEvent",
    "loads_authenticated",
    "loads_signed",
    "sign",
]
