"""Errors raised by churnscale.

Every error a user can cause derives from :class:`ChurnscaleError` and from the builtin
exception a caller would expect, and keeps its structured parts as attributes so that the
CLI and the service can render it (one line on stderr, or a 4xx JSON body). The message is
redacted when the error is made (:func:`churnscale.redaction.redact`), so a wrapped library
message cannot carry a password from a URI into the CLI, a log or a response.
"""

from __future__ import annotations

from churnscale.redaction import redact


class ChurnscaleError(Exception):
    """Base class of every error churnscale raises on purpose."""

    #: HTTP status the service answers with when this error reaches a request.
    http_status: int = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ConfigError(ChurnscaleError, ValueError):
    """A setting, flag or configuration file holds an invalid value."""

    def __init__(self, name: str, *, expected: str, received: object) -> None:
        super().__init__(f"{name}: expected {expected}, got {received!r}", field=name)
        self.name = name
        self.expected = expected
        self.received = received


class SourceError(ChurnscaleError, OSError):
    """A data source cannot be found, opened or decoded."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}", field=path)
        self.path = path
        self.reason = reason


class SchemaError(ChurnscaleError, ValueError):
    """Data does not match the schema it must follow."""

    def __init__(
        self,
        reason: str,
        *,
        column: str | None = None,
        unknown: list[str] | None = None,
        missing: list[str] | None = None,
    ) -> None:
        parts = [reason]
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        prefix = f"column {column!r}: " if column else ""
        super().__init__(prefix + "; ".join(parts), field=column)
        self.column = column
        self.unknown = unknown or []
        self.missing = missing or []


class QuarantineLimitError(ChurnscaleError, ValueError):
    """More rows were quarantined than the allowed fraction."""

    def __init__(self, *, bad: int, total: int, limit: float, quarantine: str) -> None:
        fraction = bad / max(total, 1)
        super().__init__(
            f"{bad} of {total} rows ({fraction:.2%}) failed validation, above the limit of "
            f"{limit:.2%}; see {quarantine}"
        )
        self.bad = bad
        self.total = total
        self.limit = limit
        self.quarantine = quarantine


class IntegrityError(ChurnscaleError, ValueError):
    """An artifact is missing, truncated or does not match its checksum manifest."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}", field=path)
        self.path = path
        self.reason = reason


class ModelNotFoundError(ChurnscaleError, LookupError):
    """A model reference names no bundle, registered version or alias."""

    http_status = 404

    def __init__(self, reference: str, reason: str = "no such model") -> None:
        super().__init__(f"model {reference!r}: {reason}", field="model")
        self.reference = reference


class TrainingError(ChurnscaleError, RuntimeError):
    """Training could not complete (a lost worker, out of memory, bad parameters)."""

    http_status = 500


class EvaluationError(ChurnscaleError, ValueError):
    """Labels, scores or evaluation settings are unusable (wrong length, range or classes)."""

    def __init__(self, argument: str, *, expected: str, received: object) -> None:
        super().__init__(f"{argument}: expected {expected}, got {received}", field=argument)
        self.argument = argument
        self.expected = expected
        self.received = received


class UnsafePathError(ChurnscaleError, ValueError):
    """A model name or version could leave the model root (traversal, encoding, symlink)."""

    http_status = 400

    def __init__(self, value: str, reason: str, *, field: str = "model") -> None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"{field} {shown!r}: {reason}", field=field)
        self.value = value
        self.reason = reason


class OverloadedError(ChurnscaleError, RuntimeError):
    """Too many requests are in flight and the wait queue is full; retry later."""

    http_status = 503

    def __init__(self, *, in_flight: int, queued: int, retry_after: int) -> None:
        super().__init__(
            f"overloaded: {in_flight} request(s) in flight and {queued} queued; "
            f"retry after {retry_after} s"
        )
        self.in_flight = in_flight
        self.queued = queued
        self.retry_after = retry_after


class DeadlineExceededError(ChurnscaleError, TimeoutError):
    """A request ran past its deadline."""

    http_status = 504

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request exceeded its deadline of {seconds:g} s")
        self.seconds = seconds


class RegistryUnavailableError(ChurnscaleError, ConnectionError):
    """The model registry (MLflow tracking server or database) cannot be reached."""

    http_status = 503

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"model registry {uri} is unreachable: {reason}", field="registry")
        self.uri = uri
        self.reason = reason


class StorageError(ChurnscaleError, OSError):
    """Writing an artifact or dataset failed (disk full, file size limit, permissions)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}", field=path)
        self.path = path
        self.reason = reason

    @classmethod
    def from_os_error(cls, path: str, error: OSError) -> StorageError:
        """Describe ``error`` (ENOSPC, EFBIG, …) as a write of ``path`` that left nothing."""
        detail = error.strerror or str(error)
        return cls(path, f"write failed ({detail}); nothing was published")


class ScoringError(ChurnscaleError, RuntimeError):
    """Batch scoring could not complete on the cluster (a lost worker, a different bundle)."""

    http_status = 500


class ExportError(ChurnscaleError, ValueError):
    """A model cannot be exported in the asked format, or the export does not match it."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"export {target}: {reason}", field="format")
        self.target = target


class IncompatibleModelError(ChurnscaleError, ValueError):
    """A model whose input schema differs from the one the service already answers to."""

    http_status = 409

    def __init__(self, reference: str, reason: str) -> None:
        super().__init__(f"model {reference!r} is not compatible: {reason}", field="model")
        self.reference = reference
        self.reason = reason


class InputTypeError(ChurnscaleError, TypeError):
    """A Python API argument of a type churnscale does not take (the Python API's inputs are
    pandas or polars DataFrames, pyarrow Tables, and paths)."""

    def __init__(self, argument: str, *, expected: str, received: object) -> None:
        shown = type(received).__module__ + "." + type(received).__qualname__
        super().__init__(f"{argument}: expected {expected}, got {shown}", field=argument)
        self.argument = argument
        self.expected = expected
        self.received = shown
