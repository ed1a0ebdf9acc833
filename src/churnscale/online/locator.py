"""Turn a ``--stream`` argument into an :class:`~churnscale.online.sources.RecordSource`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from churnscale.exceptions import ConfigError, SourceError
from churnscale.online.sources import JsonLinesSource, ParquetDirectorySource, RecordSource

EXPECTED = (
    "'-' (stdin), a .jsonl file, a directory of Parquet files, "
    "redis://HOST:PORT/DB?stream=NAME or nats://HOST:PORT?subject=NAME"
)


def open_source(spec: str, *, follow: bool = False) -> RecordSource:
    """The source ``spec`` names; a bad spec raises :class:`ConfigError` naming ``--stream``."""
    if spec == "-":
        return JsonLinesSource(None)
    if spec.startswith(("redis://", "nats://")):
        return _message_stream(spec, follow=follow)
    if "://" in spec:
        raise ConfigError("--stream", expected=EXPECTED, received=spec)
    path = Path(spec)
    if path.is_dir():
        return ParquetDirectorySource(path, follow=follow)
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        if not path.is_file():
            raise SourceError(spec, "no such file")
        return JsonLinesSource(path, follow=follow)
    if not path.exists():
        raise SourceError(spec, "no such file or directory")
    raise ConfigError("--stream", expected=EXPECTED, received=spec)


def _message_stream(spec: str, *, follow: bool) -> RecordSource:
    parts = urlsplit(spec)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if not parts.hostname or parts.port is None:
        raise ConfigError("--stream", expected="a host and a port in the URL", received=spec)
    if parts.scheme == "redis":
        from churnscale.online.streams import RedisStreamSource

        name = query.get("stream")
        if not name:
            raise ConfigError("--stream", expected="?stream=NAME in a redis:// URL", received=spec)
        url = f"redis://{parts.netloc}{parts.path or '/0'}"
        return RedisStreamSource(url, name, follow=follow)
    from churnscale.online.streams import NatsStreamSource

    subject = query.get("subject")
    if not subject:
        raise ConfigError("--stream", expected="?subject=NAME in a nats:// URL", received=spec)
    return NatsStreamSource(f"nats://{parts.netloc}", subject, follow=follow)
