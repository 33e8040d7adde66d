"""Query parameters of the mock REST server: validation, time bounds and cursors.

The service answers a bad parameter with ``400`` and an ``error`` message, so
every value is checked against the endpoint's parameter table before any data
is made. Timestamps accept what the service accepts: a date (``2024-01-02``,
midnight in the instrument's home time zone), an RFC 3339 date-time, or an
integer whose digit count says its unit (10 seconds, 13 milliseconds, 16
microseconds, 19 nanoseconds).

A cursor is opaque to clients: URL-safe base64 of the JSON state needed to
resume (remaining time bounds or list offset, and the original filters).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final

import msgspec

from massivekit.mock._rest_endpoints import EndpointSpec, ParamSpec
from massivekit.mock.rest_instruments import NS_PER_S, AssetClass, day_start_ns

MAX_LIMIT: Final = 50_000
DATA_START: Final = date(2003, 9, 10)
"""The oldest day the mock has data for (the service's trade history starts in 2003)."""

_RANGE_SUFFIXES: Final = (".gte", ".gt", ".lte", ".lt")


class BadRequest(Exception):
    """A parameter the service would refuse; the message goes into the 400 body."""


def validate(endpoint: EndpointSpec, path: Mapping[str, str], query: Mapping[str, str]) -> None:
    """Check every known parameter of ``endpoint`` present in the request.

    Raises:
        BadRequest: a value is malformed, out of range, or not in its enum.
    """
    for param in endpoint.params:
        source = path if param.location == "path" else query
        if param.name in source:
            _check(param, source[param.name], endpoint)


def _check(param: ParamSpec, raw: str, endpoint: EndpointSpec) -> None:
    if param.name == "limit":
        limit_max = endpoint.paginate.limit_max if endpoint.paginate else None
        parse_limit(raw, 1, int(param.maximum or limit_max or MAX_LIMIT))
        return
    if param.enum and param.type != "boolean" and raw not in param.enum:
        raise BadRequest(f"invalid {param.name}: {raw!r} is not one of {', '.join(param.enum)}")
    if param.type == "integer":
        value = parse_int(param.name, raw)
        _bounds(param, value)
    elif param.type == "number":
        try:
            _bounds(param, float(raw))
        except ValueError:
            raise BadRequest(f"invalid {param.name}: {raw!r} is not a number") from None
    elif param.type == "boolean":
        parse_bool(param.name, raw)


def _bounds(param: ParamSpec, value: float) -> None:
    if param.minimum is not None and value < param.minimum:
        raise BadRequest(f"invalid {param.name}: must be >= {param.minimum:g}")
    if param.maximum is not None and value > param.maximum:
        raise BadRequest(f"invalid {param.name}: must be <= {param.maximum:g}")


def parse_int(name: str, raw: str) -> int:
    """An integer parameter.

    Raises:
        BadRequest: ``raw`` is not a base-10 integer.
    """
    try:
        return int(raw, 10)
    except ValueError:
        raise BadRequest(f"invalid {name}: {raw!r} is not an integer") from None


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    """The ``limit`` parameter: ``default`` when absent, else ``1..maximum``.

    Raises:
        BadRequest: not an integer, or out of range.
    """
    if raw is None:
        return default
    value = parse_int("limit", raw)
    if not 1 <= value <= maximum:
        raise BadRequest(f"invalid limit: must be between 1 and {maximum}")
    return value


def parse_bool(name: str, raw: str) -> bool:
    """A ``true``/``false`` parameter.

    Raises:
        BadRequest: anything else.
    """
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise BadRequest(f"invalid {name}: {raw!r} is not true or false")
    return lowered == "true"


def parse_date(name: str, raw: str) -> date:
    """A ``YYYY-MM-DD`` parameter.

    Raises:
        BadRequest: not a valid date.
    """
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"invalid {name}: {raw!r} is not a date (YYYY-MM-DD)") from None


def _scale_int(value: int) -> int:
    """Read an integer timestamp in the unit its size suggests; return nanoseconds."""
    digits = len(str(abs(value)))
    if digits <= 11:
        return value * NS_PER_S
    if digits <= 14:
        return value * 1_000_000
    if digits <= 17:
        return value * 1_000
    return value


def parse_instant(name: str, raw: str, cls: AssetClass) -> tuple[int, int]:
    """A timestamp parameter as the ns interval ``[start, end)`` it denotes.

    A date denotes its whole day; an instant denotes itself (``end = start + 1``).

    Raises:
        BadRequest: neither a date, a date-time, nor an integer.
    """
    if raw.lstrip("-").isdigit():
        start = _scale_int(int(raw))
        return start, start + 1
    if len(raw) == 10:
        day = parse_date(name, raw)
        return day_start_ns(day, cls), day_start_ns(day + timedelta(days=1), cls)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"invalid {name}: {raw!r} is not a date or timestamp") from None
    if moment.tzinfo is None:
        raise BadRequest(f"invalid {name}: {raw!r} has no time zone")
    start = int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000
    return start, start + 1


def time_bounds(
    query: Mapping[str, str], field: str, cls: AssetClass, now_ns: int
) -> tuple[int, int]:
    """``[lo, hi)`` in ns from ``field``, ``field.gte``, ``.gt``, ``.lte`` and ``.lt``.

    Unbounded sides default to :data:`DATA_START` and ``now_ns`` (nothing is in the future).

    Raises:
        BadRequest: a malformed value.
    """
    lo, hi = day_start_ns(DATA_START, cls), now_ns + 1
    if field in query:
        lo, hi = parse_instant(field, query[field], cls)
    for suffix in _RANGE_SUFFIXES:
        key = field + suffix
        if key not in query:
            continue
        start, end = parse_instant(key, query[key], cls)
        if suffix == ".gte":
            lo = max(lo, start)
        elif suffix == ".gt":
            lo = max(lo, end)
        elif suffix == ".lte":
            hi = min(hi, end)
        else:
            hi = min(hi, start)
    return lo, min(hi, now_ns + 1)


def parse_order(raw: str | None, default: str) -> bool:
    """``order``/``sort`` as asc/desc; returns whether it is descending.

    Raises:
        BadRequest: neither ``asc`` nor ``desc``.
    """
    value = default if raw is None else raw
    if value not in ("asc", "desc"):
        raise BadRequest(f"invalid order: {value!r} is not asc or desc")
    return value == "desc"


# --- cursors --------------------------------------------------------------------------------

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def encode_cursor(state: Mapping[str, Any]) -> str:
    """An opaque ``cursor=`` token holding ``state``."""
    return base64.urlsafe_b64encode(_encoder.encode(state)).decode().rstrip("=")


def decode_cursor(token: str) -> dict[str, Any]:
    """The state inside a ``cursor=`` token.

    Raises:
        BadRequest: the token was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return _decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("invalid cursor") from None
