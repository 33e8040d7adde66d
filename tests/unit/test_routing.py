"""The routing view of a frame: (ev, instrument) and raw bytes per event (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from massivekit.config import Market
from massivekit.models import (
    INSTRUMENT_FIELDS,
    FrameDecodeError,
    FrameDecoder,
    RoutedEvent,
    frame_events_raw,
    key_of,
    route_frame,
    topic_of,
)
from massivekit.models.routing import frame_keys

FRAMES = Path(__file__).resolve().parent.parent / "data" / "frames"

SAMPLE_FRAMES: dict[str, Market] = {
    "stocks.json": Market.STOCKS,
    "options.json": Market.OPTIONS,
    "forex.json": Market.FOREX,
    "crypto.json": Market.CRYPTO,
    "indices.json": Market.INDICES,
    "futures.json": Market.FUTURES,
    "handshake.json": Market.STOCKS,
    "stocks_unknown_in_middle.json": Market.STOCKS,
}


def _frame(name: str) -> bytes:
    return (FRAMES / name).read_bytes()


def _expected_instrument(item: Any) -> str | None:
    """The rule of PROTOCOL.md's table, written out independently of the code."""
    if not isinstance(item, dict):
        return None
    field = INSTRUMENT_FIELDS.get(item.get("ev", ""))
    candidates = [field] if field else ["sym", "pair", "T"]
    for name in candidates:
        if isinstance(item.get(name), str):
            return item[name]  # type: ignore[no-any-return]
    return None


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _spec_example(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    content = operation["responses"]["200"]["content"]["application/json"]
    if "example" in content:
        return content["example"]  # type: ignore[no-any-return]
    schema = _resolve(spec, content.get("schema", {}))
    if "example" in schema:
        return schema["example"]  # type: ignore[no-any-return]
    first = next(iter(content["examples"].values()))
    return _resolve(spec, first)["value"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", SAMPLE_FRAMES)
def test_sample_frames_route_every_event(name: str) -> None:
    raw = _frame(name)
    items = json.loads(raw)
    routed = route_frame(raw)
    assert [r.ev for r in routed] == [item["ev"] for item in items]
    assert [r.instrument for r in routed] == [_expected_instrument(item) for item in items]
    for event, item in zip(routed, items, strict=True):
        assert json.loads(bytes(event.raw)) == item
        assert bytes(event.raw) in raw  # a slice of the frame, never re-encoded


@pytest.mark.parametrize(("name", "market"), SAMPLE_FRAMES.items())
def test_routing_agrees_with_the_typed_decoder(name: str, market: Market) -> None:
    raw = _frame(name)
    typed = [(e.ev, e.instrument) for e in FrameDecoder(market).decode(raw)]
    assert typed == [(r.ev, r.instrument) for r in route_frame(raw)]


@pytest.mark.spec
def test_every_spec_example_routes_by_its_instrument_field(
    websocket_spec: dict[str, Any],
) -> None:
    failures = []
    for path, item in websocket_spec["paths"].items():
        example = _spec_example(websocket_spec, item["get"])
        (routed,) = route_frame(json.dumps([example]).encode())
        expected = example[INSTRUMENT_FIELDS[example["ev"]]]
        if (routed.ev, routed.instrument) != (example["ev"], expected):
            failures.append(f"{path}: {routed!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("event", "topic"),
    [
        ({"ev": "Q", "sym": "O:SPY241220P00720000", "bp": 9.71}, "Q.O:SPY241220P00720000"),
        ({"ev": "C", "p": "USD/CNH", "x": "44", "a": 6.8, "b": 6.7}, "C.USD/CNH"),
        ({"ev": "XT", "pair": "BTC-USD", "p": 33021.9, "s": 0.1}, "XT.BTC-USD"),
        ({"ev": "V", "val": 3988.5, "T": "I:SPX"}, "V.I:SPX"),
        ({"ev": "T", "sym": "BRK.A", "p": 1.0}, "T.BRK.A"),
        ({"ev": "NOI", "T": "NTEST.Q", "p": 440, "o": 480}, "NOI.NTEST.Q"),
        ({"ev": "LULD", "T": "MSFT", "h": 1.0}, "LULD.MSFT"),
        ({"ev": "CAS", "pair": "USD/EUR", "o": 0.8}, "CAS.USD/EUR"),
        ({"ev": "XL2", "pair": "BTC-USD", "b": [[1.0, 2.0]]}, "XL2.BTC-USD"),
        ({"ev": "FMV", "fmv": 7.2, "sym": "O:TSLA210903C00700000"}, "FMV.O:TSLA210903C00700000"),
        ({"ev": "LV", "val": 1.06, "sym": "C:EURUSD"}, "LV.C:EURUSD"),
        ({"ev": "AM", "sym": "X:BTC-USD", "v": 1.5}, "AM.X:BTC-USD"),
    ],
)
def test_topics_of_each_event_kind(event: dict[str, Any], topic: str) -> None:
    (routed,) = route_frame(json.dumps([event]).encode())
    assert routed.topic == topic


def test_crypto_price_is_never_taken_for_the_instrument() -> None:
    (routed,) = route_frame(b'[{"ev":"XT","p":33021.9,"s":1}]')
    assert (routed.ev, routed.instrument, routed.topic) == ("XT", None, None)


def test_status_events_name_no_instrument() -> None:
    routed = route_frame(_frame("handshake.json"))
    assert {(r.ev, r.instrument, r.topic) for r in routed} == {("status", None, None)}


@pytest.mark.parametrize(
    ("event", "instrument"),
    [
        (b'{"ev":"ZZ","sym":"S","pair":"P","T":"X"}', "S"),
        (b'{"ev":"ZZ","T":"X","pair":"P"}', "P"),
        (b'{"ev":"ZZ","T":"X","p":"not-this"}', "X"),
        (b'{"ev":"ZZ","sym":5,"pair":"P"}', "P"),
        (b'{"ev":"ZZ","x":1}', None),
    ],
)
def test_unknown_codes_try_sym_then_pair_then_t(event: bytes, instrument: str | None) -> None:
    frame = b'[{"ev":"T","sym":"AAPL"},' + event + b',{"ev":"C","p":"EUR/USD"}]'
    first, middle, last = route_frame(frame)
    assert (first.ev, first.instrument) == ("T", "AAPL")
    assert (middle.ev, middle.instrument, bytes(middle.raw)) == ("ZZ", instrument, event)
    assert (last.ev, last.instrument) == ("C", "EUR/USD")


def test_a_known_code_with_an_odd_instrument_still_routes() -> None:
    first, second = route_frame(b'[{"ev":"T","sym":5},{"ev":"Q","sym":"MSFT"}]')
    assert (first.ev, first.instrument) == ("T", None)
    assert (second.ev, second.instrument) == ("Q", "MSFT")


@pytest.mark.parametrize(
    ("element", "instrument"),
    [(b"1", None), (b'"T"', None), (b"[]", None), (b"null", None), (b'{"sym":"A"}', "A")],
)
def test_odd_elements_route_without_raising(element: bytes, instrument: str | None) -> None:
    (routed,) = route_frame(b"[" + element + b"]")
    assert (routed.ev, routed.instrument, routed.topic) == ("", instrument, None)
    assert bytes(routed.raw) == element


def test_whitespace_between_and_inside_events_is_fine() -> None:
    frame = b'[ {"ev": "T", "sym": "AAPL", "p": 1.5} ,\n  {"ev":"status","status":"success"} ]'
    trade, status = route_frame(frame)
    assert (trade.ev, trade.instrument) == ("T", "AAPL")
    assert bytes(trade.raw) == b'{"ev": "T", "sym": "AAPL", "p": 1.5}'
    assert status.ev == "status"


def test_a_frame_of_many_events_routes_in_order() -> None:
    items = json.loads(_frame("crypto.json")) * 125
    routed = route_frame(json.dumps(items).encode())
    assert len(routed) == 1000
    assert [r.instrument for r in routed] == [_expected_instrument(i) for i in items]


def test_single_event_frames_take_the_short_path() -> None:
    (routed,) = route_frame(b'[{"ev":"V","T":"I:NDX","val":1.0}]')
    assert routed == RoutedEvent("V", "I:NDX", routed.raw)


def test_text_frames_route_too() -> None:
    (routed,) = route_frame('[{"ev":"LV","sym":"AAPL","val":1.0}]')
    assert (routed.ev, routed.instrument) == ("LV", "AAPL")


def test_an_empty_frame_routes_to_nothing() -> None:
    assert route_frame(b"[]") == []


@pytest.mark.parametrize("frame", [b"", b"nope", b'{"ev":"T"}', b"[1,", b"[{]", b"null"])
def test_malformed_frames_raise(frame: bytes) -> None:
    with pytest.raises(FrameDecodeError) as info:
        route_frame(frame)
    assert info.value.preview == frame.decode()
    with pytest.raises(FrameDecodeError):
        frame_events_raw(frame)


def test_raw_slices_can_be_forwarded_as_they_are() -> None:
    frame = _frame("options.json")
    raws = frame_events_raw(frame)
    assert all(isinstance(r, msgspec.Raw) for r in raws)
    rebuilt = b"[" + b",".join(raws) + b"]"  # what a proxy sends downstream
    assert json.loads(rebuilt) == json.loads(frame)


def test_key_of_reads_one_event() -> None:
    assert key_of(b'{"ev":"C","p":"USD/CNH"}') == ("C", "USD/CNH")
    assert key_of(b'{"ev":"XT","pair":"BTC-USD","p":1.0}') == ("XT", "BTC-USD")
    assert key_of(b'{"ev":"status","status":"connected"}') == ("status", None)
    assert key_of(b'{"ev":"NEW","T":"X"}') == ("NEW", "X")
    assert key_of(b"3") == (None, None)


def test_topic_of() -> None:
    assert topic_of("T", "AAPL") == "T.AAPL"
    assert topic_of("C", "USD/CNH") == "C.USD/CNH"
    assert topic_of("status", None) is None
    assert topic_of("", "AAPL") is None
    assert topic_of(None, "AAPL") is None


def test_instrument_fields_cover_every_data_event_code() -> None:
    assert set(INSTRUMENT_FIELDS) == {
        *("T", "Q", "A", "AM", "LULD", "NOI", "FMV", "LV", "V"),
        *("C", "CA", "CAS", "XT", "XQ", "XA", "XAS", "XL2"),
    }


@pytest.mark.parametrize(
    "frame",
    [b'[{"ev":"T","sym":"\xc3"}]', b'[{"ev":"\xc3","sym":"A"}]', b'[{"ev":"ZZ","sym":"\xff"}]'],
)
def test_invalid_utf8_is_a_malformed_frame(frame: bytes) -> None:
    """Regression: msgspec's UnicodeDecodeError used to escape to the proxy's reader."""
    with pytest.raises(FrameDecodeError, match="UTF-8"):
        route_frame(frame)
    with pytest.raises(FrameDecodeError, match="UTF-8"):
        frame_keys(frame)
