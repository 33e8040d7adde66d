"""Query strings and ``next_url``: pure functions, no I/O.

Massive's wire conventions (the official client's too): ``None`` means
"not sent", lists are joined by commas (``ticker.any_of=A,B``), booleans are
``true``/``false``, dates are ISO ``YYYY-MM-DD`` and datetimes travel as
integer nanoseconds since the epoch.

A ``next_url`` carries ``apiKey=`` when the first request sent the key in the
query string. We always authenticate with a Bearer header, so the key is cut
out of every ``next_url`` before it is stored, logged or followed, and the
path and query are followed against the client's own base URL: a key is never
sent to a host the user did not configure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

_SECRET_PARAMS: Final = frozenset({"apikey", "api_key", "token", "access_token"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_US: Final = 1_000


def wire_value(value: object) -> str:
    """One query value in Massive's wire form.

    Args:
        value: a str, number, bool, enum, date, datetime or an iterable of those.

    Returns:
        The text to send; datetimes become integer nanoseconds (naive ones are UTC).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return wire_value(value.value)
    if isinstance(value, datetime):
        return str(datetime_to_ns(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, Iterable):
        return ",".join(wire_value(v) for v in value)
    return str(value)


def datetime_to_ns(value: datetime) -> int:
    """Nanoseconds since the Unix epoch, exactly (integer arithmetic, no float).

    Naive datetimes are taken as UTC, unlike ``datetime.timestamp()`` which
    would take them as local time.
    """
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1) * _NS_PER_US


def encode_query(
    params: Mapping[str, object] | None, extra: Mapping[str, object] | None = None
) -> dict[str, str]:
    """The query of a request: ``params`` then ``extra`` (which wins), ``None`` dropped.

    Args:
        params: wire-named parameters built by an endpoint method.
        extra: the caller's own additions (``params=`` / ``CallOptions.params``).

    Returns:
        Parameter names to wire strings, in insertion order.
    """
    query: dict[str, str] = {}
    for source in (params, extra):
        if source:
            for name, value in source.items():
                if value is not None:
                    query[name] = wire_value(value)
    return query


def strip_secrets(url: str) -> str:
    """``url`` without any ``apiKey``/``token`` query parameter (the rest kept byte for byte)."""
    head, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = query.partition("#")
    kept = [part for part in query.split("&") if part and not _is_secret(part)]
    rebuilt = head + ("?" + "&".join(kept) if kept else "")
    return rebuilt + (hash_sep + fragment if hash_sep else "")


def _is_secret(part: str) -> bool:
    return part.partition("=")[0].lower() in _SECRET_PARAMS


def rebase(base_url: str, next_url: str) -> str:
    """The URL to fetch for ``next_url``: its path and query on ``base_url``.

    Args:
        base_url: the client's base URL (scheme, host, optional path prefix).
        next_url: the service's ``next_url``, absolute or relative.

    Returns:
        ``base_url`` + path + query of ``next_url``, secrets stripped, still percent-encoded.
    """
    clean = strip_secrets(next_url)
    base = base_url.rstrip("/")
    if clean.startswith(base + "/"):
        return clean  # already on our base (keeps a base path prefix intact)
    parts = urlsplit(clean)
    path_and_query = parts.path + ("?" + parts.query if parts.query else "")
    return base + path_and_query
