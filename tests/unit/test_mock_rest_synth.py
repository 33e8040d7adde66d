"""The REST mock's data, without HTTP: schema validity, determinism, index arithmetic, speed."""

from __future__ import annotations

import bisect
import itertools
import random
import time
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from massivekit.mock._rest_endpoints import ENDPOINTS, EndpointSpec
from massivekit.mock.rest import _shapes, handler_for, pick_variant, sample_path
from massivekit.mock.rest_bars import aggregate_page, indicator_values
from massivekit.mock.rest_handlers import Call
from massivekit.mock.rest_instruments import (
    REFERENCE_PRICES,
    AssetClass,
    OptionContract,
    asset_class,
    canonical_ticker,
    day_start_ns,
    parse_option,
    reference_price,
    rounded_price,
)
from massivekit.mock.rest_query import (
    BadRequest,
    decode_cursor,
    encode_cursor,
    parse_instant,
    parse_limit,
    time_bounds,
)
from massivekit.mock.rest_schema import validate_value
from massivekit.mock.rest_series import StockTrade, TickSeries
from massivekit.mock.rest_synth import Context, synthesize

NOW_NS = int(datetime(2024, 6, 14, 21, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
SEED = 11
_json = msgspec.json.Encoder()


def make_call(endpoint: EndpointSpec, query: dict[str, str] | None = None) -> Call:
    """A Call for the endpoint's sample path, as the HTTP layer would build it."""
    template, concrete = endpoint.path.split("/"), sample_path(endpoint).split("/")
    path = {t[1:-1]: c for t, c in zip(template, concrete, strict=True) if t.startswith("{")}
    return Call(endpoint, path, query or {}, None, SEED, NOW_NS, "0" * 32)


def answer(endpoint: EndpointSpec, query: dict[str, str] | None = None) -> Any:
    reply = handler_for(endpoint)(make_call(endpoint, query))
    return msgspec.json.decode(_json.encode(reply.body))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.operation_id}")
def test_every_endpoint_answers_valid_data(endpoint: EndpointSpec) -> None:
    body = answer(endpoint)
    assert validate_value(endpoint.response, body) == []
    if isinstance(body, dict) and endpoint.response["type"] == "object":
        assert body.get("status", "OK") == "OK"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.operation_id}")
def test_synthesize_honours_every_schema(endpoint: EndpointSpec) -> None:
    for seed in range(3):
        ctx = Context(ticker="MSFT", now_ns=NOW_NS, request_id="ab" * 16)
        value = synthesize(endpoint.response, ctx, random.Random(seed))
        assert validate_value(endpoint.response, value) == []


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if not e.ignored][::5],
    ids=lambda e: f"{e.operation_id}",
)
def test_answers_are_deterministic(endpoint: EndpointSpec) -> None:
    first = _json.encode(handler_for(endpoint)(make_call(endpoint)).body)
    second = _json.encode(handler_for(endpoint)(make_call(endpoint)).body)
    assert first == second


def test_synthesized_values_follow_the_field_names() -> None:
    endpoint = next(e for e in ENDPOINTS if e.operation_id == "LastTrade")
    results = answer(endpoint)["results"]
    assert results["T"] == "AAPL"
    assert abs(results["p"] / REFERENCE_PRICES["AAPL"] - 1) < 0.25
    assert results["t"] > 10**18  # nanoseconds, as the schema's description says
    snapshot = next(e for e in ENDPOINTS if e.path.endswith("stocks/tickers/{stocksTicker}"))
    ticker = answer(snapshot)["ticker"]
    for bar in (ticker["day"], ticker["min"], ticker["prevDay"]):
        assert bar["l"] <= min(bar["o"], bar["c"]) <= max(bar["o"], bar["c"]) <= bar["h"]
    assert ticker["min"]["t"] < 10**14  # milliseconds
    assert ticker["lastQuote"]["p"] <= ticker["lastQuote"]["P"]


@pytest.mark.parametrize("ticker", sorted(REFERENCE_PRICES))
def test_prices_stay_near_their_reference(ticker: str) -> None:
    for day in range(0, 400, 37):
        price = rounded_price(ticker, NOW_NS - day * 86_400 * 10**9)
        assert 0.75 < price / REFERENCE_PRICES[ticker] < 1.3


def test_stream_spellings_share_reference_prices() -> None:
    assert canonical_ticker("BTC-USD") == "X:BTCUSD"
    assert canonical_ticker("EUR/USD") == "C:EURUSD"
    assert canonical_ticker("C:EUR/USD") == "C:EURUSD"
    assert canonical_ticker("X:BTC-USD") == "X:BTCUSD"
    assert canonical_ticker("AAPL") == "AAPL"
    assert reference_price("BTC-USD") == REFERENCE_PRICES["X:BTCUSD"]
    assert reference_price("EUR/USD") == REFERENCE_PRICES["C:EURUSD"]
    assert 0 < reference_price("ZZZQ") == reference_price("ZZZQ")


def test_option_tickers_round_trip() -> None:
    contract = parse_option("O:SPY241220P00720000")
    assert contract == OptionContract("SPY", date(2024, 12, 20), "put", 720.0)
    assert contract.ticker == "O:SPY241220P00720000"
    assert parse_option("AAPL") is None
    assert [asset_class(t) for t in ("O:SPY241220P00720000", "X:BTCUSD", "C:EURUSD", "I:SPX")] == [
        AssetClass.OPTIONS,
        AssetClass.CRYPTO,
        AssetClass.FX,
        AssetClass.INDICES,
    ]


# --- tick series ------------------------------------------------------------------------------


def test_tick_index_arithmetic_matches_brute_force() -> None:
    series = TickSeries("O:SPY240621C00530000", "trades", SEED)
    rows = series.day_rows(date(2024, 6, 14))
    assert rows is not None
    times = [rows.time_of(i) for i in range(rows.count)]
    assert all(a < b for a, b in itertools.pairwise(times))
    rng = random.Random(5)
    for _ in range(500):
        t = rng.choice(times) + rng.randint(-2, 2)
        assert rows.index_at(t) == bisect.bisect_left(times, t)
    assert rows.index_at(times[0] - 10**12) == 0
    assert rows.index_at(times[-1] + 1) == rows.count


@pytest.mark.parametrize("ticker", ["ZZZT", "X:BTCUSD"])
def test_pages_stitch_without_gaps_across_days(ticker: str) -> None:
    series = TickSeries(ticker, "trades", SEED)
    lo = day_start_ns(date(2024, 6, 13), series.cls) + 3_600 * 10**9
    hi = day_start_ns(date(2024, 6, 18), series.cls)  # crosses a weekend
    expected = series.count(lo, hi)
    forward: list[int] = []
    cursor = lo
    while True:
        rows, resume = series.page(cursor, hi, 20_000, desc=False)
        forward += [_time(r) for r in rows]
        if resume is None:
            break
        cursor = resume
    assert len(forward) == len(set(forward)) == expected
    assert forward == sorted(forward)
    assert lo <= forward[0]
    assert forward[-1] < hi
    backward: list[int] = []
    cursor = hi
    while True:
        rows, resume = series.page(lo, cursor, 33_333, desc=True)
        backward += [_time(r) for r in rows]
        if resume is None:
            break
        cursor = resume
    assert backward == forward[::-1]


def _time(row: Any) -> int:
    return int(getattr(row, "sip_timestamp", None) or row.participant_timestamp)


def test_hot_symbol_day_holds_a_million_trades() -> None:
    series = TickSeries("AAPL", "trades", SEED)
    day = date(2024, 6, 14)
    lo, hi = day_start_ns(day, series.cls), day_start_ns(date(2024, 6, 15), series.cls)
    assert series.count(lo, hi) == 1_000_000
    assert series.count(lo, lo + 1) == 0
    assert TickSeries("AAPL", "trades", SEED).count(*_weekend()) == 0


def _weekend() -> tuple[int, int]:
    return day_start_ns(date(2024, 6, 15), AssetClass.STOCKS), day_start_ns(
        date(2024, 6, 17), AssetClass.STOCKS
    )


def test_trade_rows_look_like_trades() -> None:
    series = TickSeries("AAPL", "trades", SEED)
    rows, _ = series.page(
        *time_bounds({"timestamp": "2024-06-14"}, "timestamp", series.cls, NOW_NS), 5000, False
    )
    assert len(rows) == 5000
    for row in rows:
        assert isinstance(row, StockTrade)
        assert 0.75 < row.price / REFERENCE_PRICES["AAPL"] < 1.3
        assert row.size > 0
        assert row.participant_timestamp < row.sip_timestamp
        assert (row.trf_id != 0) == (row.exchange == 4) == (row.trf_timestamp != 0)
    assert len({row.id for row in rows if isinstance(row, StockTrade)}) == len(rows)


def test_a_50k_row_page_is_fast(scale: float) -> None:
    series = TickSeries("AAPL", "trades", SEED)
    lo, hi = time_bounds({"timestamp": "2024-06-14"}, "timestamp", series.cls, NOW_NS)
    series.page(lo, hi, 1000, False)  # warm the tables
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        rows, _ = series.page(lo, hi, 50_000, False)
        body = _json.encode({"status": "OK", "results": rows})
        best = min(best, time.perf_counter() - start)
    assert len(rows) == 50_000
    assert body.count(b'"sip_timestamp"') == 50_000
    # About 40 ms here; the bound leaves room for slow CI machines.
    assert best < 0.25 * scale, f"{50_000 / best:,.0f} rows/s"


# --- bars ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "multiplier", "timespan"),
    [
        ("AAPL", 1, "minute"),
        ("X:BTCUSD", 5, "minute"),
        ("C:EURUSD", 1, "hour"),
        ("I:SPX", 1, "day"),
        ("O:SPY250117C00560000", 1, "day"),
        ("MSFT", 1, "week"),
        ("SPY", 2, "month"),
        ("QQQ", 1, "quarter"),
    ],
)
def test_bars_are_consistent(ticker: str, multiplier: int, timespan: str) -> None:
    lo = day_start_ns(date(2024, 1, 2), asset_class(ticker)) // 10**6
    bars, _ = aggregate_page(ticker, multiplier, timespan, (lo, NOW_NS // 10**6), 2000, False, SEED)
    assert bars
    for bar in bars:
        assert 0 < bar.l <= min(bar.o, bar.c) <= max(bar.o, bar.c) <= bar.h
        assert bar.l <= bar.vw <= bar.h
        assert bar.v > 0
        assert bar.n > 0
    stamps = [bar.t for bar in bars]
    assert stamps == sorted(set(stamps))


def test_bar_pages_resume_where_they_stopped() -> None:
    lo = day_start_ns(date(2024, 6, 10), AssetClass.STOCKS) // 10**6
    hi = day_start_ns(date(2024, 6, 15), AssetClass.STOCKS) // 10**6
    whole, _ = aggregate_page("AAPL", 1, "minute", (lo, hi), 50_000, False, SEED)
    pieces: list[int] = []
    cursor = lo
    while True:
        bars, resume = aggregate_page("AAPL", 1, "minute", (cursor, hi), 777, False, SEED)
        pieces += [b.t for b in bars]
        if resume is None:
            break
        cursor = resume
    assert pieces == [b.t for b in whole]
    assert len(whole) == 5 * 960  # five sessions of 04:00-20:00 ET


def test_indicators_are_computed_from_the_series() -> None:
    points = [float(x) for x in range(1, 31)]
    sma = indicator_values("sma", points, 5)
    assert sma[-1]["value"] == pytest.approx(28.0)
    rsi = indicator_values("rsi", points, 14)
    assert rsi[-1]["value"] == 100.0
    macd = indicator_values("macd", points, 26)
    assert set(macd[-1]) == {"value", "signal", "histogram"}


# --- query parameters ---------------------------------------------------------------------------


def test_timestamps_are_read_in_the_unit_their_size_says() -> None:
    ns = 1_718_371_800_000_000_000
    for raw in ("1718371800", "1718371800000", "1718371800000000", str(ns)):
        assert parse_instant("t", raw, AssetClass.STOCKS) == (ns, ns + 1)
    assert parse_instant("t", "2024-06-14T13:30:00Z", AssetClass.STOCKS) == (ns, ns + 1)
    day = parse_instant("t", "2024-06-14", AssetClass.STOCKS)
    assert day == (
        day_start_ns(date(2024, 6, 14), AssetClass.STOCKS),
        day_start_ns(date(2024, 6, 15), AssetClass.STOCKS),
    )
    assert day[0] == 1_718_337_600 * 10**9  # midnight in New York (EDT)
    with pytest.raises(BadRequest):
        parse_instant("t", "yesterday", AssetClass.STOCKS)


def test_time_bounds_combine_filters() -> None:
    query = {"timestamp.gte": "2024-06-13", "timestamp.lt": "2024-06-14"}
    lo, hi = time_bounds(query, "timestamp", AssetClass.CRYPTO, NOW_NS)
    assert (lo, hi) == (1_718_236_800 * 10**9, 1_718_323_200 * 10**9)
    query = {"timestamp.gt": "1718236800", "timestamp.lte": "1718236900"}
    lo, hi = time_bounds(query, "timestamp", AssetClass.CRYPTO, NOW_NS)
    assert (lo, hi) == (1_718_236_800 * 10**9 + 1, 1_718_236_900 * 10**9 + 1)
    _, hi = time_bounds({}, "timestamp", AssetClass.STOCKS, NOW_NS)
    assert hi == NOW_NS + 1  # nothing from the future


def test_limits_and_cursors() -> None:
    assert parse_limit(None, 1000, 50_000) == 1000
    assert parse_limit("50000", 1000, 50_000) == 50_000
    for bad in ("0", "50001", "ten", "-3"):
        with pytest.raises(BadRequest):
            parse_limit(bad, 1000, 50_000)
    state = {"q": {"timestamp": "2024-06-14"}, "lo": 1, "hi": 2**62}
    token = encode_cursor(state)
    assert token.isascii()
    assert "=" not in token
    assert decode_cursor(token) == state
    for bad in ("!!!", "aGVsbG8", ""):
        with pytest.raises(BadRequest):
            decode_cursor(bad)


# --- routing and the validator ------------------------------------------------------------------


def test_twins_share_one_route_and_the_ticker_picks_the_schema() -> None:
    shapes = _shapes(ENDPOINTS)
    assert sum(len(v) for v in shapes.values()) == len(ENDPOINTS)
    trades = shapes["/v3/trades/{p0}"]
    assert next(e.operation_id for e in trades) == "Trades"
    assert pick_variant(trades, ["AAPL"]).operation_id == "Trades"
    assert pick_variant(trades, ["O:SPY241220P00720000"]).operation_id == "TradesOptions"
    assert pick_variant(trades, ["X:BTCUSD"]).operation_id == "TradesCrypto"
    assert pick_variant(trades, ["C:EURUSD"]).operation_id == "Trades"
    assert all(not v[0].ignored for v in shapes.values())


def test_validator_reports_what_is_wrong() -> None:
    schema = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "integer", "format": "int32"},
            "d": {"type": "string", "format": "date"},
            "e": {"type": "string", "enum": ["x"]},
            "l": {"type": "array", "items": {"type": "number"}},
        },
    }
    assert validate_value(schema, {"a": 1, "d": "2024-01-02", "e": "x", "l": [1, 2.5]}) == []
    errors = validate_value(schema, {"a": True, "d": "2024-13-02", "e": "y", "l": ["1"]})
    assert len(errors) == 4
    assert validate_value(schema, {}) == ["$: missing required 'a'"]
    assert validate_value(schema, {"a": 2**40}) == ["$.a: 1099511627776 is out of int32 range"]
