"""Typed WebSocket events and the per-cluster frame decoders (pure, no event loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest

from massivekit.config import Market
from massivekit.models import (
    CLUSTER_EVENTS,
    EVENT_CLASSES,
    Aggregate,
    CryptoLevel2Book,
    CryptoTrade,
    CurrencyAggregate,
    EquityQuote,
    EquityTrade,
    ForexQuote,
    FrameDecodeError,
    FrameDecoder,
    FuturesAggregate,
    FuturesMinuteAggregate,
    FuturesQuote,
    FuturesTrade,
    Imbalance,
    IndexValue,
    LimitUpLimitDown,
    MinuteAggregate,
    SecondAggregate,
    StatusEvent,
    StocksEvent,
    UnknownEvent,
    decoder_for,
    event_type_for,
)

FRAMES = Path(__file__).resolve().parent.parent / "data" / "frames"

SAMPLE_FRAMES: dict[str, Market] = {
    "stocks.json": Market.STOCKS,
    "options.json": Market.OPTIONS,
    "forex.json": Market.FOREX,
    "crypto.json": Market.CRYPTO,
    "indices.json": Market.INDICES,
    "futures.json": Market.FUTURES,
    "handshake.json": Market.STOCKS,
}

SPEC_CLUSTERS: dict[str, Market] = {
    "stocks": Market.STOCKS,
    "options": Market.OPTIONS,
    "forex": Market.FOREX,
    "fx": Market.FOREX,  # the key x-massive-order uses for the forex cluster
    "crypto": Market.CRYPTO,
    "indices": Market.INDICES,
}


def _frame(name: str) -> bytes:
    return (FRAMES / name).read_bytes()


def _as_dict(event: msgspec.Struct) -> dict[str, Any]:
    return json.loads(msgspec.json.encode(event))  # type: ignore[no-any-return]


def _wire_names(cls: type[msgspec.Struct]) -> set[str]:
    return set(cls.__struct_encode_fields__)


# --------------------------------------------------------------------------- spec helpers


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _example(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    content = operation["responses"]["200"]["content"]["application/json"]
    if "example" in content:
        return content["example"]  # type: ignore[no-any-return]
    schema = _resolve(spec, content.get("schema", {}))
    if "example" in schema:
        return schema["example"]  # type: ignore[no-any-return]
    examples = content.get("examples", {})
    first = next(iter(examples.values()))
    return _resolve(spec, first)["value"]  # type: ignore[no-any-return]


def _schema_properties(spec: dict[str, Any], node: Any) -> set[str]:
    node = _resolve(spec, node)
    names = set(node.get("properties", {}))
    for part in node.get("allOf", []) + node.get("oneOf", []) + node.get("anyOf", []):
        names |= _schema_properties(spec, part)
    return names


def _market_of(path: str) -> Market:
    # Paths read /stocks/T, /business/stocks/FMV, /launchpad/forex/AM.
    for segment in path.strip("/").split("/"):
        if segment in SPEC_CLUSTERS:
            return SPEC_CLUSTERS[segment]
    raise AssertionError(f"no cluster in spec path {path}")


def _spec_examples(spec: dict[str, Any]) -> list[tuple[str, Market, dict[str, Any]]]:
    found = []
    for path, item in spec["paths"].items():
        found.append((path, _market_of(path), _example(spec, item["get"])))
    assert len(found) >= 33, "the pinned spec has 33 channel paths"
    return found


# --------------------------------------------------------------------------- the spec


@pytest.mark.spec
def test_every_spec_example_decodes_to_its_typed_event(websocket_spec: dict[str, Any]) -> None:
    failures = []
    for path, market, example in _spec_examples(websocket_spec):
        (event,) = FrameDecoder(market).decode(json.dumps([example]))
        if isinstance(event, UnknownEvent) or event.ev != example["ev"]:
            failures.append(f"{path}: {event!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.spec
def test_every_spec_example_round_trips(websocket_spec: dict[str, Any]) -> None:
    failures = []
    for path, market, example in _spec_examples(websocket_spec):
        (event,) = decoder_for(market).decode(json.dumps([example]).encode())
        back = _as_dict(event)
        changed = {k: (v, back.get(k)) for k, v in example.items() if back.get(k) != v}
        added = set(back) - set(example)  # omit_defaults: absent fields stay absent
        if changed or added:
            failures.append(f"{path}: changed={changed} added={added}")
    assert not failures, "\n".join(failures)


@pytest.mark.spec
def test_every_schema_field_is_modelled(websocket_spec: dict[str, Any]) -> None:
    failures = []
    for path, market, example in _spec_examples(websocket_spec):
        operation = websocket_spec["paths"][path]["get"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        cls = event_type_for(market, example["ev"])
        assert cls is not None, path
        missing = _schema_properties(websocket_spec, schema) - _wire_names(cls) - {"ev"}
        if missing:
            failures.append(f"{path}: {cls.__name__} lacks {sorted(missing)}")
    assert not failures, "\n".join(failures)


@pytest.mark.spec
def test_every_channel_of_x_massive_order_is_in_its_cluster_union(
    websocket_spec: dict[str, Any],
) -> None:
    for cluster, groups in websocket_spec["x-massive-order"].items():
        market = SPEC_CLUSTERS[cluster]
        for group in groups["market"]:
            for path in group["paths"]:
                ev = path.rsplit("/", 1)[1]
                assert event_type_for(market, ev) is not None, f"{cluster}: {path}"


@pytest.mark.spec
def test_spec_example_types_are_kept(websocket_spec: dict[str, Any]) -> None:
    by_path = {path: (m, ex) for path, m, ex in _spec_examples(websocket_spec)}

    def decode(path: str) -> Any:
        market, example = by_path[path]
        return FrameDecoder(market).decode(json.dumps([example]))[0]

    forex = decode("/forex/C")
    assert forex.exchange == "44"  # a string in the published example
    assert forex.pair == "USD/CNH"
    stock_trade, crypto_trade = decode("/stocks/T"), decode("/crypto/XT")
    assert stock_trade.trade_id == "12345"
    assert crypto_trade.trade_id == 14272084
    assert crypto_trade.price == 33021.9
    assert crypto_trade.size == 0.01616617
    imbalance = decode("/stocks/NOI")
    assert imbalance.timestamp == 1601318039223013600  # nanoseconds, exact
    assert isinstance(imbalance.timestamp, int)
    assert decode("/launchpad/crypto/AM").day_volume == 738.6112
    assert decode("/indices/AM").volume is None


# --------------------------------------------------------------------------- sample frames


@pytest.mark.parametrize(("name", "market"), SAMPLE_FRAMES.items())
def test_sample_frames_decode_fully_typed(name: str, market: Market) -> None:
    decoder = FrameDecoder(market)
    raw = _frame(name)
    events = decoder.decode(raw)
    expected = json.loads(raw)
    assert [type(e).ev for e in events] == [item["ev"] for item in expected]
    assert not [e for e in events if isinstance(e, UnknownEvent)]
    assert (decoder.frames, decoder.events, decoder.unknown_events) == (1, len(expected), 0)


@pytest.mark.parametrize(("name", "market"), SAMPLE_FRAMES.items())
def test_sample_frames_round_trip(name: str, market: Market) -> None:
    expected = json.loads(_frame(name))
    events = FrameDecoder(market).decode(_frame(name))
    assert [_as_dict(e) for e in events] == expected


def test_stocks_sample_fields_read_by_name() -> None:
    trade, quote, second, minute, luld, noi, fmv, lv, status = FrameDecoder(Market.STOCKS).decode(
        _frame("stocks.json")
    )
    assert isinstance(trade, EquityTrade)
    assert (trade.symbol, trade.price, trade.size, trade.exchange) == ("BRK.A", 623101.5, 1, 12)
    assert (trade.conditions, trade.sequence, trade.trf_id) == ((14, 41), 1203, 202)
    assert isinstance(quote, EquityQuote)
    assert (quote.bid_price, quote.ask_size, quote.indicators) == (171.02, 2, (1,))
    assert isinstance(second, SecondAggregate)
    assert isinstance(minute, MinuteAggregate)
    assert minute.otc is True
    assert second.otc is None
    assert isinstance(luld, LimitUpLimitDown)
    assert (luld.symbol, luld.high_price, luld.low_price) == ("GME", 27.15, 22.21)
    assert isinstance(noi, Imbalance)
    assert (noi.paired_quantity, noi.auction_type, noi.book_clearing_price) == (98000, "C", 517.33)
    assert fmv.topic == "FMV.AAPL"
    assert lv.topic == "LV.AAPL"
    assert isinstance(status, StatusEvent)
    assert status.message == "subscribed to: T.BRK.A"


def test_the_same_code_means_different_events_per_cluster() -> None:
    trade = b'[{"ev":"T","sym":"ESM4","p":5230.25,"s":3,"t":1,"q":2}]'
    assert isinstance(FrameDecoder(Market.STOCKS).decode(trade)[0], EquityTrade)
    assert isinstance(FrameDecoder(Market.FUTURES).decode(trade)[0], FuturesTrade)
    assert event_type_for(Market.STOCKS, "Q") is EquityQuote
    assert event_type_for(Market.FUTURES_CME, "Q") is FuturesQuote
    assert event_type_for(Market.INDICES, "XT") is None


def test_futures_venues_decode_futures_events() -> None:
    for market in (Market.FUTURES_CME, Market.FUTURES_CBOT, Market.FUTURES_NYMEX):
        trade, quote, second, minute = FrameDecoder(market).decode(_frame("futures.json"))
        assert isinstance(quote, FuturesQuote)
        assert (quote.bid_timestamp, quote.ask_timestamp) == (1712345644000, 1712345643999)
        assert isinstance(minute, FuturesMinuteAggregate)
        assert isinstance(second, FuturesAggregate)
        assert (minute.dollar_volume, minute.transactions) == (7251230.0, 97)
        assert trade.topic == "T.ESM4"


def test_shared_shapes_have_distinct_classes() -> None:
    forex = FrameDecoder(Market.FOREX).decode(_frame("forex.json"))
    crypto = FrameDecoder(Market.CRYPTO).decode(_frame("crypto.json"))
    aggregates = [e for e in forex + crypto if isinstance(e, CurrencyAggregate)]
    assert [type(e).ev for e in aggregates] == ["CA", "CAS", "XA", "XAS"]
    assert aggregates[1].end_timestamp is None  # CAS without "e" decodes
    launchpad = [e for e in forex + crypto if isinstance(e, Aggregate)]
    assert [e.symbol for e in launchpad] == ["C:EUR-USD", "X:BTC-USD"]
    assert launchpad[1].average_size == 0.75


def test_forex_quote_exchange_accepts_string_and_integer() -> None:
    first, second = FrameDecoder(Market.FOREX).decode(_frame("forex.json"))[:2]
    assert isinstance(first, ForexQuote)
    assert isinstance(second, ForexQuote)
    assert (first.exchange, second.exchange) == ("48", 48)
    assert first.topic == "C.USD/CNH"


def test_crypto_book_levels() -> None:
    book = FrameDecoder(Market.CRYPTO).decode(_frame("crypto.json"))[4]
    assert isinstance(book, CryptoLevel2Book)
    assert book.bids == ((67012.4, 0.5), (67012.0, 1.75))
    assert book.asks[1] == (67013.0, 2.0)


def test_index_value_names_its_instrument_in_capital_t() -> None:
    value = FrameDecoder(Market.INDICES).decode(_frame("indices.json"))[0]
    assert isinstance(value, IndexValue)
    assert (value.symbol, value.instrument, value.topic) == ("I:SPX", "I:SPX", "V.I:SPX")


def test_many_mixed_events_in_one_frame_keep_their_order() -> None:
    items = json.loads(_frame("stocks.json")) * 40
    events = FrameDecoder(Market.STOCKS).decode(json.dumps(items))
    assert len(events) == 360
    assert [type(e).ev for e in events] == [item["ev"] for item in items]


# --------------------------------------------------------------------------- resilience


def test_unknown_event_in_the_middle_of_a_frame_is_kept_and_counted() -> None:
    decoder = FrameDecoder(Market.STOCKS)
    raw = _frame("stocks_unknown_in_middle.json")
    trade, unknown, quote, invalid, minute = decoder.decode(raw)
    assert isinstance(trade, EquityTrade)
    assert isinstance(quote, EquityQuote)
    assert isinstance(minute, MinuteAggregate)
    assert isinstance(unknown, UnknownEvent)
    assert (unknown.ev, unknown.instrument, unknown.topic) == ("ZZ", "MSFT", "ZZ.MSFT")
    assert json.loads(unknown.raw) == json.loads(raw)[1]
    assert unknown.raw in raw  # the bytes as received, not re-encoded
    assert isinstance(invalid, UnknownEvent)  # a known code whose field changed type
    assert invalid.ev == "T"
    assert (decoder.frames, decoder.events) == (1, 5)
    assert (decoder.unknown_events, decoder.invalid_events) == (2, 1)


def test_new_fields_are_ignored_on_the_fast_path() -> None:
    frame = b'[{"ev":"T","sym":"A","p":1.5,"s":2,"t":3,"brand_new":{"x":[1,2]},"ds":"0.5"}]'
    decoder = FrameDecoder(Market.STOCKS)
    (trade,) = decoder.decode(frame)
    assert isinstance(trade, EquityTrade)
    assert (trade.price, trade.size, trade.timestamp) == (1.5, 2, 3)
    assert decoder.unknown_events == 0


def test_an_event_of_another_cluster_is_unknown_here() -> None:
    decoder = FrameDecoder(Market.STOCKS)
    (event,) = decoder.decode(b'[{"ev":"XT","pair":"BTC-USD","p":1.0}]')
    assert isinstance(event, UnknownEvent)
    assert (event.ev, event.instrument) == ("XT", "BTC-USD")
    assert decoder.invalid_events == 0


@pytest.mark.parametrize(
    ("element", "ev"),
    [(b"1", None), (b'"T"', None), (b"[]", None), (b'{"sym":"A"}', None), (b'{"ev":7}', None)],
)
def test_odd_elements_of_a_well_formed_array_are_unknown(element: bytes, ev: str | None) -> None:
    frame = b'[{"ev":"status","status":"connected","message":"hi"},' + element + b"]"
    status, odd = FrameDecoder(Market.STOCKS).decode(frame)
    assert isinstance(status, StatusEvent)
    assert isinstance(odd, UnknownEvent)
    assert (odd.ev, odd.raw) == (ev, element)


@pytest.mark.parametrize(
    "frame",
    [b"", b"garbage", b'{"ev":"T","sym":"A"}', b"[1,", b'"text"', b"null", b"[{]", "[{]"],
)
def test_malformed_frames_raise_a_typed_error(frame: bytes | str) -> None:
    decoder = FrameDecoder(Market.STOCKS)
    with pytest.raises(FrameDecodeError) as info:
        decoder.decode(frame)
    assert isinstance(info.value, ValueError)
    assert info.value.preview == (frame if isinstance(frame, str) else frame.decode())
    assert (decoder.frames, decoder.malformed_frames, decoder.events) == (1, 1, 0)


def test_the_error_preview_is_short() -> None:
    with pytest.raises(FrameDecodeError) as info:
        FrameDecoder(Market.STOCKS).decode(b"x" * 10_000)
    assert len(info.value.preview) < 200
    assert len(str(info.value)) < 300


def test_text_and_buffer_frames_are_accepted() -> None:
    raw = _frame("handshake.json")
    decoder = FrameDecoder(Market.STOCKS)
    for data in (raw, raw.decode(), bytearray(raw), memoryview(raw)):
        assert len(decoder.decode(data)) == 4
    assert decoder.frames == 4


def test_an_empty_frame_is_an_empty_list() -> None:
    assert FrameDecoder(Market.CRYPTO).decode(b"[]") == []


def test_status_events_decode_on_every_cluster() -> None:
    frame = _frame("handshake.json")
    for market in Market:
        events = FrameDecoder(market).decode(frame)
        assert [e.status for e in events if isinstance(e, StatusEvent)] == [
            "connected",
            "auth_success",
            "success",
            "error",
        ]
        assert {e.topic for e in events if isinstance(e, StatusEvent)} == {None}


# --------------------------------------------------------------------------- the classes


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_event_classes_are_frozen_untracked_and_coded_by_their_tag(cls: type[Any]) -> None:
    config = cls.__struct_config__
    assert config.frozen
    assert not config.gc
    assert config.omit_defaults
    assert config.tag_field == "ev"
    assert cls.ev == config.tag


def test_absent_fields_default_and_are_not_encoded() -> None:
    trade = EquityTrade(symbol="AAPL", price=1.25)
    assert (trade.trade_id, trade.tape, trade.trf_id, trade.conditions) == (None, None, None, ())
    assert _as_dict(trade) == {"ev": "T", "sym": "AAPL", "p": 1.25}
    assert _as_dict(StatusEvent(status="connected")) == {"ev": "status", "status": "connected"}


def test_events_are_immutable_and_hashable() -> None:
    trade = CryptoTrade(pair="BTC-USD", price=1.0, conditions=(1,))
    with pytest.raises(AttributeError):
        trade.price = 2.0  # type: ignore[misc]
    assert hash(trade) == hash(CryptoTrade(pair="BTC-USD", price=1.0, conditions=(1,)))


def test_every_market_has_a_cluster_union() -> None:
    for market in Market:
        assert market.family in CLUSTER_EVENTS
        assert decoder_for(market).market is market
    assert {cls.ev for cls in get_args(StocksEvent)} == {
        "T",
        "Q",
        "A",
        "AM",
        "LULD",
        "NOI",
        "FMV",
        "LV",
        "status",
    }


def test_decoder_for_is_cached_and_frame_decoders_count_apart() -> None:
    assert decoder_for(Market.OPTIONS) is decoder_for(Market.OPTIONS)
    first, second = FrameDecoder(Market.OPTIONS), FrameDecoder(Market.OPTIONS)
    first.decode(_frame("options.json"))
    assert (first.frames, second.frames) == (1, 0)
    assert "frames=1" in repr(first)


@pytest.mark.parametrize(("name", "market"), SAMPLE_FRAMES.items())
def test_decode_data_refuses_statuses_and_counts_nothing(name: str, market: Market) -> None:
    decoder = FrameDecoder(market)
    expected = [item for item in json.loads(_frame(name)) if item["ev"] != "status"]
    events = decoder.decode_data(json.dumps(expected))
    assert [type(e).ev for e in events] == [item["ev"] for item in expected]
    with pytest.raises(msgspec.ValidationError):
        decoder.decode_data(b'[{"ev":"status","status":"success","message":"subscribed to: T.A"}]')
    with pytest.raises(msgspec.ValidationError):
        decoder.decode_data(b'[{"ev":"ZZ","sym":"A"}]')
    with pytest.raises(msgspec.DecodeError):
        decoder.decode_data(b"[{")
    assert (decoder.frames, decoder.events, decoder.unknown_events) == (0, 0, 0)


@pytest.mark.parametrize(
    "frame",
    [b'[{"ev":"T","sym":"\xc3"}]', b'[{"ev":"\xc3","sym":"A"}]', b'[{"ev":"ZZ","sym":"\xff"}]'],
)
def test_invalid_utf8_is_a_malformed_frame(frame: bytes) -> None:
    """Regression: msgspec's UnicodeDecodeError used to escape the decoder."""
    decoder = FrameDecoder(Market.STOCKS)
    with pytest.raises(FrameDecodeError, match="UTF-8"):
        decoder.decode(frame)
    assert (decoder.frames, decoder.malformed_frames, decoder.events) == (1, 1, 0)
