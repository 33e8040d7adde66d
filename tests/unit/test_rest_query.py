"""Query strings and next_url handling: pure functions."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from massivekit.rest._query import (
    datetime_to_ns,
    encode_query,
    rebase,
    strip_secrets,
    wire_value,
)


class Sort(enum.Enum):
    ASC = "asc"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("AAPL", "AAPL"),
        (True, "true"),
        (False, "false"),
        (50000, "50000"),
        (1.5, "1.5"),
        (Sort.ASC, "asc"),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 14, 30, tzinfo=UTC), "1704205800000000000"),
        (["AAPL", "MSFT"], "AAPL,MSFT"),
        (("a", 1, True), "a,1,true"),
    ],
)
def test_wire_values(value: object, wire: str) -> None:
    assert wire_value(value) == wire


def test_datetimes_are_exact_nanoseconds_and_naive_means_utc() -> None:
    aware = datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC)
    assert datetime_to_ns(aware) == 1704205800_123456000
    assert datetime_to_ns(aware.replace(tzinfo=None)) == datetime_to_ns(aware)
    east = aware.astimezone(timezone(timedelta(hours=5)))
    assert datetime_to_ns(east) == datetime_to_ns(aware)


def test_encode_query_drops_none_and_extra_wins() -> None:
    params = {
        "timestamp.gte": "2024-01-02",
        "limit": 10,
        "order": None,
        "ticker.any_of": ["A", "B"],
    }
    query = encode_query(params, {"limit": 20, "custom": True})
    assert query == {
        "timestamp.gte": "2024-01-02",
        "limit": "20",
        "ticker.any_of": "A,B",
        "custom": "true",
    }
    assert encode_query(None) == {}


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://h/v3/trades/A?cursor=abc&apiKey=SECRET", "https://h/v3/trades/A?cursor=abc"),
        ("https://h/v3/trades/A?apiKey=SECRET&cursor=abc", "https://h/v3/trades/A?cursor=abc"),
        ("https://h/v3/trades/A?APIKEY=SECRET", "https://h/v3/trades/A"),
        ("https://h/x?token=T&a=1#frag", "https://h/x?a=1#frag"),
        ("https://h/x?cursor=a%3D%3D", "https://h/x?cursor=a%3D%3D"),
        ("https://h/x", "https://h/x"),
    ],
)
def test_strip_secrets_keeps_the_rest_byte_for_byte(url: str, clean: str) -> None:
    assert strip_secrets(url) == clean


def test_rebase_follows_on_our_base_url_only() -> None:
    base = "http://127.0.0.1:9000"
    assert rebase(base, "https://api.massive.com/v3/trades/A?cursor=x&apiKey=K") == (
        "http://127.0.0.1:9000/v3/trades/A?cursor=x"
    )
    assert rebase(base + "/", "http://evil.example/v3/x?cursor=1") == base + "/v3/x?cursor=1"
    assert rebase(base, "/v3/x?cursor=1") == base + "/v3/x?cursor=1"
    prefixed = "https://proxy.example/massive"
    assert rebase(prefixed, prefixed + "/v3/x?cursor=1") == prefixed + "/v3/x?cursor=1"
