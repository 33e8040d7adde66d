"""Massive's integer timestamps to :class:`datetime`, exactly.

Massive sends nanoseconds (trades, quotes: ``sip_timestamp``) or
milliseconds (aggregates: ``t``) since the Unix epoch. Models keep them as
``int`` so nothing is lost; these helpers convert on demand with integer
arithmetic only (a float holds ~16 digits, a nanosecond timestamp has 19).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from massivekit.rest._query import datetime_to_ns

__all__ = ["TimeUnit", "from_datetime", "to_datetime"]

TimeUnit = Literal["ns", "us", "ms", "s"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PER_SECOND: Final[dict[str, int]] = {
    "ns": 1_000_000_000,
    "us": 1_000_000,
    "ms": 1_000,
    "s": 1,
}


def to_datetime(value: int, unit: TimeUnit = "ns") -> datetime:
    """An aware UTC :class:`datetime` for an epoch timestamp.

    Args:
        value: the timestamp, an integer count of ``unit`` since 1970-01-01 UTC.
        unit: ``"ns"`` (default), ``"us"``, ``"ms"`` or ``"s"``.

    Returns:
        The instant, exact to the microsecond (the resolution of ``datetime``);
        nanoseconds below it are floored, never rounded up.

    Raises:
        ValueError: an unknown unit.
    """
    per_second = _PER_SECOND.get(unit)
    if per_second is None:
        raise ValueError(f"unit must be one of {sorted(_PER_SECOND)}, not {unit!r}")
    if per_second >= 1_000_000:
        micros = value // (per_second // 1_000_000)
    else:
        micros = value * (1_000_000 // per_second)
    return _EPOCH + timedelta(microseconds=micros)


def from_datetime(value: datetime, unit: TimeUnit = "ns") -> int:
    """The epoch timestamp of ``value`` in ``unit`` (naive datetimes are taken as UTC).

    Raises:
        ValueError: an unknown unit.
    """
    per_second = _PER_SECOND.get(unit)
    if per_second is None:
        raise ValueError(f"unit must be one of {sorted(_PER_SECOND)}, not {unit!r}")
    return datetime_to_ns(value) // (1_000_000_000 // per_second)
