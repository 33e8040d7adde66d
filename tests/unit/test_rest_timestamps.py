"""Epoch timestamps to datetimes, exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from massivekit.rest import from_datetime, to_datetime


def test_nanoseconds_are_exact_to_the_microsecond() -> None:
    ns = 1704243599_942523410
    assert to_datetime(ns) == datetime(2024, 1, 3, 0, 59, 59, 942523, tzinfo=UTC)
    assert to_datetime(ns).tzinfo is UTC


def test_units() -> None:
    when = datetime(2024, 1, 2, 14, 30, 0, 250000, tzinfo=UTC)
    assert to_datetime(1704205800250, unit="ms") == when
    assert to_datetime(1704205800250000, unit="us") == when
    assert to_datetime(1704205800, unit="s") == when.replace(microsecond=0)
    assert from_datetime(when) == 1704205800_250000000
    assert from_datetime(when, unit="ms") == 1704205800250
    assert from_datetime(when, unit="s") == 1704205800


def test_round_trip_of_large_values_does_not_go_through_float() -> None:
    # 2**53 ns would lose digits through float; integer arithmetic keeps them.
    for ns in (1_000, 9_007_199_254_740_993_000, 1795310912933097000):
        assert from_datetime(to_datetime(ns)) == ns


def test_before_the_epoch_floors() -> None:
    assert to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unit"):
        to_datetime(1, unit="minutes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unit"):
        from_datetime(datetime.now(UTC), unit="h")  # type: ignore[arg-type]
