"""The mock's market simulator: deterministic, wire-exact, coherent, skewed, scriptable."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from massivekit.config import Market
from massivekit.sim.market import MarketSimulator, SimBatch, SimEvent
from massivekit.sim.universe import Universe

T0 = 1_700_000_000_000  # Unix ms; not minute-aligned on purpose

# Keys per (cluster family, ev), from PROTOCOL.md's event table; futures from Massive's
# futures WebSocket docs (trades p/s/t/q, quotes with bt/at, aggregates v/dv/n/OHLC).
# allowed: every key the event may carry; required: keys it must carry; the field that
# names the instrument.
_AGG = {"ev", "sym", "v", "av", "op", "vw", "o", "c", "h", "l", "a", "z", "s", "e", "otc"}
SHAPES: dict[tuple[Market, str], tuple[set[str], set[str], str]] = {
    (Market.STOCKS, "T"): (
        {"ev", "sym", "x", "i", "z", "p", "s", "c", "t", "q", "trfi", "trft"},
        {"ev", "sym", "x", "i", "z", "p", "s", "t", "q"},
        "sym",
    ),
    (Market.STOCKS, "Q"): (
        {"ev", "sym", "bx", "bp", "bs", "ax", "ap", "as", "c", "i", "t", "q", "z"},
        {"ev", "sym", "bx", "bp", "bs", "ax", "ap", "as", "t", "q", "z"},
        "sym",
    ),
    (Market.STOCKS, "A"): (_AGG, _AGG - {"otc"}, "sym"),
    (Market.STOCKS, "AM"): (_AGG, _AGG - {"otc"}, "sym"),
    (Market.STOCKS, "LULD"): ({"ev", "T", "h", "l", "i", "z", "t", "q"},) * 2 + ("T",),
    (Market.STOCKS, "NOI"): ({"ev", "T", "t", "at", "a", "i", "x", "o", "p", "b"},) * 2 + ("T",),
    (Market.OPTIONS, "T"): ({"ev", "sym", "x", "p", "s", "c", "t", "q"},) * 2 + ("sym",),
    (Market.OPTIONS, "Q"): ({"ev", "sym", "bx", "ax", "bp", "ap", "bs", "as", "t", "q"},) * 2
    + ("sym",),
    (Market.OPTIONS, "A"): (_AGG, _AGG - {"otc"}, "sym"),
    (Market.OPTIONS, "AM"): (_AGG, _AGG - {"otc"}, "sym"),
    (Market.INDICES, "V"): ({"ev", "T", "val", "t"},) * 2 + ("T",),
    (Market.INDICES, "A"): ({"ev", "sym", "op", "o", "c", "h", "l", "s", "e"},) * 2 + ("sym",),
    (Market.INDICES, "AM"): ({"ev", "sym", "op", "o", "c", "h", "l", "s", "e"},) * 2 + ("sym",),
    (Market.FOREX, "C"): ({"ev", "p", "x", "a", "b", "t"},) * 2 + ("p",),
    (Market.FOREX, "CA"): (
        {"ev", "pair", "o", "c", "h", "l", "v", "vw", "s", "e", "z"},
        {"ev", "pair", "o", "c", "h", "l", "v", "s", "e"},
        "pair",
    ),
    (Market.CRYPTO, "XT"): ({"ev", "pair", "p", "s", "c", "i", "x", "t", "r"},) * 2 + ("pair",),
    (Market.CRYPTO, "XQ"): ({"ev", "pair", "bp", "bs", "ap", "as", "x", "t", "r"},) * 2 + ("pair",),
    (Market.CRYPTO, "XA"): ({"ev", "pair", "v", "vw", "z", "o", "c", "h", "l", "s", "e"},) * 2
    + ("pair",),
    (Market.CRYPTO, "XL2"): ({"ev", "pair", "b", "a", "x", "t", "r"},) * 2 + ("pair",),
    (Market.FUTURES, "T"): ({"ev", "sym", "p", "s", "t", "q"},) * 2 + ("sym",),
    (Market.FUTURES, "Q"): ({"ev", "sym", "bp", "bs", "bt", "ap", "as", "at", "t", "q"},) * 2
    + ("sym",),
    (Market.FUTURES, "A"): ({"ev", "sym", "v", "dv", "n", "o", "c", "h", "l", "s", "e"},) * 2
    + ("sym",),
}
SHAPES[(Market.FOREX, "CAS")] = SHAPES[(Market.FOREX, "CA")]
SHAPES[(Market.CRYPTO, "XAS")] = SHAPES[(Market.CRYPTO, "XA")]
SHAPES[(Market.FUTURES, "AM")] = SHAPES[(Market.FUTURES, "A")]

TICK_EVS = {
    Market.STOCKS: {"T", "Q"},
    Market.OPTIONS: {"T", "Q"},
    Market.FUTURES: {"T", "Q"},
    Market.FOREX: {"C"},
    Market.CRYPTO: {"XT", "XQ"},
    Market.INDICES: {"V"},
}
SECOND_MINUTE = {
    Market.STOCKS: ("A", "AM"),
    Market.OPTIONS: ("A", "AM"),
    Market.FUTURES: ("A", "AM"),
    Market.INDICES: ("A", "AM"),
    Market.FOREX: ("CAS", "CA"),
    Market.CRYPTO: ("XAS", "XA"),
}
OCC = re.compile(r"^O:[A-Z]{1,6}\d{6}[CP]\d{8}$")
QUOTE_PRICES = {"Q": ("bp", "ap"), "XQ": ("bp", "ap"), "C": ("b", "a")}


def run(
    sim: MarketSimulator, seconds: int, per_second: int = 2000, step_ms: int = 100
) -> list[Any]:
    """Drive ``sim`` for ``seconds`` of simulated time; return the decoded events."""
    out: list[Any] = []
    per_call = max(1, per_second * step_ms // 1000)
    for i in range(seconds * 1000 // step_ms + 1):
        batch = sim.batch(per_call, T0 + i * step_ms)
        for topic, data in zip(batch.topics, batch.data, strict=True):
            event = json.loads(data)
            out.append((topic, event))
    return out


@functools.cache
def recorded(market: Market) -> tuple[Market, list[Any]]:
    """About 70 simulated seconds of one cluster: a minute boundary, many seconds."""
    sim = MarketSimulator(market, seed=5, tail=150)
    return market.family, run(sim, seconds=70, per_second=600, step_ms=250)


# Every family, and one futures venue (venues differ only in their universe).
STREAMED = [m for m in Market if m is m.family] + [Market.FUTURES_CME]


@pytest.fixture(scope="module", params=STREAMED, ids=lambda m: m.value)
def stream(request: pytest.FixtureRequest) -> tuple[Market, list[Any]]:
    return recorded(request.param)


# --- determinism ----------------------------------------------------------------------


def _calls(sim: MarketSimulator) -> list[bytes]:
    out: list[bytes] = []
    for i in range(40):
        batch = sim.batch(250, T0 + i * 137)
        out += batch.data
        out += [topic.encode() for topic in batch.topics]
    return out


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.value)
def test_same_seed_same_bytes(market: Market) -> None:
    a = _calls(MarketSimulator(market, seed=42, tail=80))
    b = _calls(MarketSimulator(market, seed=42, tail=80))
    assert a == b


@pytest.mark.parametrize("market", [Market.STOCKS, Market.FOREX, Market.CRYPTO])
def test_different_seed_different_bytes(market: Market) -> None:
    assert _calls(MarketSimulator(market, seed=1, tail=80)) != _calls(
        MarketSimulator(market, seed=2, tail=80)
    )


def test_given_universe_is_used_and_checked() -> None:
    universe = Universe.for_market(Market.STOCKS, seed=0, tail=3)
    sim = MarketSimulator(Market.STOCKS, universe=universe)
    assert sim.universe is universe
    names = {topic.partition(".")[2] for topic in sim.batch(2000, T0).topics}
    assert names <= set(universe.symbols)
    with pytest.raises(ValueError, match="forex"):
        MarketSimulator(Market.STOCKS, universe=Universe.for_market(Market.FOREX, tail=0))


# --- wire shape -----------------------------------------------------------------------


def test_events_have_the_documented_keys(stream: tuple[Market, list[Any]]) -> None:
    family, events = stream
    seen = Counter(event["ev"] for _, event in events)
    second_ev, minute_ev = SECOND_MINUTE[family]
    assert TICK_EVS[family] | {second_ev, minute_ev} <= set(seen)
    for topic, event in events:
        allowed, required, field = SHAPES[(family, event["ev"])]
        keys = set(event)
        assert required <= keys <= allowed, (topic, sorted(keys ^ allowed))
        ev, _, instrument = topic.partition(".")
        assert ev == event["ev"]
        assert instrument == event[field], (topic, event)


def test_tick_events_dominate(stream: tuple[Market, list[Any]]) -> None:
    family, events = stream
    ticks = sum(1 for _, event in events if event["ev"] in TICK_EVS[family])
    assert ticks > 0.5 * len(events)


def test_stocks_carry_luld_noi_and_trf() -> None:
    _, events = recorded(Market.STOCKS)
    kinds = Counter(event["ev"] for _, event in events)
    assert kinds["LULD"] > 0
    assert kinds["NOI"] > 0
    trades = [event for _, event in events if event["ev"] == "T"]
    trf = [t for t in trades if "trfi" in t]
    assert trf
    assert all(t["x"] == 4 for t in trf)
    assert any("c" not in t for t in trades)
    assert any(37 in t.get("c", []) for t in trades)
    odd = [t for t in trades if t["s"] < 100]
    assert odd
    assert all(37 in t["c"] for t in odd)


def test_crypto_carries_xl2() -> None:
    _, events = recorded(Market.CRYPTO)
    books = [event for _, event in events if event["ev"] == "XL2"]
    assert books
    for book in books:
        assert book["b"]
        assert book["a"]
        assert max(px for px, _ in book["b"]) < min(px for px, _ in book["a"])
        assert book["r"] >= book["t"]


def test_instrument_fields_by_cluster(stream: tuple[Market, list[Any]]) -> None:
    family, events = stream
    for _, event in events:
        ev = event["ev"]
        if ev in ("T", "Q") and family is Market.OPTIONS:
            assert OCC.match(event["sym"]), event["sym"]
        elif ev == "C":  # forex quotes name the pair in p
            assert re.match(r"^[A-Z]{3}/[A-Z]{3}$", event["p"])
        elif ev == "XT":  # crypto trades name it in pair; p is the price
            assert re.match(r"^[A-Z0-9]+-[A-Z]+$", event["pair"])
            assert isinstance(event["p"], float)
            assert event["p"] > 0
        elif ev == "V":
            assert event["T"].startswith("I:")


@pytest.mark.spec
def test_key_types_match_the_spec(websocket_spec: dict[str, Any]) -> None:
    """Every key the spec knows has a JSON type its schema or its example uses.

    The spec disagrees with itself in places (crypto aggregates: ``v`` an integer in
    the schema, ``951.6112`` in the example), so either is accepted.
    """
    json_types = {"integer": (int,), "number": (int, float), "string": (str,),
                  "array": (list,), "boolean": (bool,)}  # fmt: skip
    for market in (Market.STOCKS, Market.OPTIONS, Market.FOREX, Market.CRYPTO, Market.INDICES):
        events = run(MarketSimulator(market, seed=1, tail=40), seconds=61, per_second=400)
        for _, event in events:
            path = websocket_spec["paths"].get(f"/{market.value}/{event['ev']}")
            assert path is not None, event["ev"]
            props, example = _schema_props(websocket_spec, path)
            for key, value in event.items():
                accepted = json_types.get(props.get(key) or "", ())
                if key in example:
                    accepted += (type(example[key]),)
                if accepted:
                    assert isinstance(value, accepted), (event["ev"], key, value)


def _schema_props(spec: dict[str, Any], path: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The JSON type of each property of a channel's message, and its example."""

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def props(schema: Any) -> dict[str, Any]:
        schema = resolve(schema)
        out: dict[str, Any] = {}
        for combo in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(combo, []):
                out.update(props(sub))
        for key, sub in schema.get("properties", {}).items():
            out[key] = resolve(sub).get("type")
        return out

    result: dict[str, Any] = {}
    example: Any = {}
    for response in path.get("get", {}).get("responses", {}).values():
        for content in resolve(response).get("content", {}).values():
            result.update(props(content.get("schema", {})))
            if isinstance(content.get("example"), dict):
                example = content["example"]
    return result, example


# --- key order --------------------------------------------------------------------------

# Futures are not in the pinned spec: their order is that of Massive's futures docs
# (as models/futures.py and tests/data/frames/futures.json have it), ``q`` after ``t``.
FUTURES_ORDER: dict[str, list[str]] = {
    "T": ["ev", "sym", "p", "s", "t", "q"],
    "Q": ["ev", "sym", "bp", "bs", "bt", "ap", "as", "at", "t", "q"],
    "A": ["ev", "sym", "v", "dv", "o", "c", "h", "l", "n", "s", "e"],
    "AM": ["ev", "sym", "v", "dv", "o", "c", "h", "l", "n", "s", "e"],
}
BOUNDARY_EVS = {Market.STOCKS: {"LULD", "NOI"}, Market.CRYPTO: {"XL2"}}


def _spec_order(spec: dict[str, Any], path: dict[str, Any]) -> list[str]:
    """The order of a channel's keys on the wire: its example's.

    A key the example lacks (``trfi``, ``otc``...) goes where the schema lists it:
    right after the key the schema lists before it.
    """
    props, example = _schema_props(spec, path)
    order = list(example)
    previous: str | None = None
    for key in props:  # in the schema's order
        if key not in order:
            order.insert(0 if previous is None else order.index(previous) + 1, key)
        previous = key
    return order


def test_spec_order_places_the_keys_the_example_lacks() -> None:
    content = {
        "schema": {"properties": {key: {} for key in ("ev", "x", "p", "q", "trfi", "trft")}},
        "example": {"ev": "T", "p": 1.0, "x": 4, "q": 1},
    }
    path = {"get": {"responses": {"200": {"content": {"application/json": content}}}}}
    assert _spec_order({}, path) == ["ev", "p", "x", "q", "trfi", "trft"]


def _assert_wire_order(
    family: Market, events: list[Any], order_of: Callable[[str], list[str] | None]
) -> set[str]:
    """Check the key order of every event; return the event kinds checked."""
    orders: dict[str, list[str] | None] = {}
    for topic, event in events:
        ev = event["ev"]
        if ev not in orders:
            orders[ev] = order_of(ev)
        order = orders[ev]
        assert order is not None, f"{family.value}/{ev} has no documented order"
        keys = list(event)  # json.loads keeps the order of the text
        assert set(keys) <= set(order), (topic, sorted(set(keys) - set(order)))
        assert keys == [key for key in order if key in event], (topic, keys, order)
    return set(orders)


@pytest.mark.spec
@pytest.mark.parametrize(
    "market", [m for m in STREAMED if m.family is not Market.FUTURES], ids=lambda m: m.value
)
def test_keys_come_in_the_spec_order(market: Market, websocket_spec: dict[str, Any]) -> None:
    """Every event kind of every cluster lays its keys out as Massive sends them.

    Futures are not in the spec: see test_futures_keys_come_in_the_docs_order.
    """
    family, events = recorded(market)

    def order_of(ev: str) -> list[str] | None:
        path = websocket_spec["paths"].get(f"/{family.value}/{ev}")
        return None if path is None else _spec_order(websocket_spec, path)

    checked = _assert_wire_order(family, events, order_of)
    assert checked == TICK_EVS[family] | set(SECOND_MINUTE[family]) | BOUNDARY_EVS.get(
        family, set()
    )


def test_futures_keys_come_in_the_docs_order() -> None:
    for market in (Market.FUTURES, Market.FUTURES_CME):
        family, events = recorded(market)
        checked = _assert_wire_order(family, events, FUTURES_ORDER.get)
        assert checked == set(FUTURES_ORDER)


def test_optional_keys_take_their_place() -> None:
    """The keys only some events carry: a TRF print's trfi/trft, a quote's indicators."""
    _, events = recorded(Market.STOCKS)
    trf = next(e for _, e in events if e["ev"] == "T" and "trfi" in e)
    assert list(trf)[-3:] == ["q", "trfi", "trft"]
    flagged = next(e for _, e in events if e["ev"] == "Q" and "i" in e)
    assert list(flagged)[-5:] == ["c", "i", "t", "q", "z"]


# --- coherence ------------------------------------------------------------------------


def test_quotes_are_never_crossed(stream: tuple[Market, list[Any]]) -> None:
    _, events = stream
    for _, event in events:
        if event["ev"] in QUOTE_PRICES:
            bid, ask = (event[k] for k in QUOTE_PRICES[event["ev"]])
            assert 0 < bid < ask, event


def test_bars_are_well_formed(stream: tuple[Market, list[Any]]) -> None:
    family, events = stream
    second_ev, minute_ev = SECOND_MINUTE[family]
    bars = [event for _, event in events if event["ev"] in (second_ev, minute_ev)]
    assert bars
    for bar in bars:
        assert bar["l"] <= min(bar["o"], bar["c"]) <= max(bar["o"], bar["c"]) <= bar["h"], bar
        span = 1000 if bar["ev"] == second_ev else 60_000
        assert bar["e"] - bar["s"] == span
        assert bar["s"] % span == 0
        if "vw" in bar:
            assert bar["l"] - 1e-9 <= bar["vw"] <= bar["h"] + 1e-9
        if "v" in bar:
            assert bar["v"] > 0


@pytest.mark.parametrize("market", [Market.STOCKS, Market.OPTIONS, Market.FUTURES])
def test_second_bars_match_the_trades(market: Market) -> None:
    """Each second's bar holds every print of that second, and exactly their volume."""
    _, events = recorded(market)
    prints: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for _, event in events:
        if event["ev"] == "T":
            prints[(event["sym"], event["t"] // 1000 * 1000)].append(event)
    checked = 0
    for _, bar in events:
        if bar["ev"] != "A":
            continue
        trades = prints[(bar["sym"], bar["s"])]
        assert sum(t["s"] for t in trades) == bar["v"], bar
        assert all(bar["l"] <= t["p"] <= bar["h"] for t in trades), bar
        checked += 1
    assert checked > 100


def test_minute_bars_sum_the_seconds(stream: tuple[Market, list[Any]]) -> None:
    family, events = stream
    second_ev, minute_ev = SECOND_MINUTE[family]
    key = "pair" if family in (Market.FOREX, Market.CRYPTO) else "sym"
    seconds_of: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for _, e in events:
        if e["ev"] == second_ev:
            seconds_of[(e[key], e["s"] // 60_000 * 60_000)].append(e)
    minutes = [e for _, e in events if e["ev"] == minute_ev]
    assert minutes
    for bar in minutes:
        seconds = seconds_of[(bar[key], bar["s"])]
        assert seconds, bar
        assert bar["h"] == max(s["h"] for s in seconds)
        assert bar["l"] == min(s["l"] for s in seconds)
        if "v" in bar:
            assert bar["v"] == pytest.approx(sum(s["v"] for s in seconds))


def test_sequence_numbers_increase_per_symbol(stream: tuple[Market, list[Any]]) -> None:
    family, events = stream
    last: dict[str, int] = {}
    gaps = 0
    for topic, event in events:
        if "q" not in event:
            continue
        symbol = topic.partition(".")[2]
        if symbol in last:
            assert event["q"] > last[symbol], (topic, event["q"], last[symbol])
            gaps += event["q"] - last[symbol] > 1
        last[symbol] = event["q"]
    if family in (Market.STOCKS, Market.OPTIONS, Market.FUTURES):
        assert last
        assert gaps > 0


def test_timestamps_never_go_back(stream: tuple[Market, list[Any]]) -> None:
    _, events = stream
    stamps = [event["t"] for _, event in events if "t" in event]
    assert stamps == sorted(stamps)
    assert stamps[0] >= T0
    assert stamps[-1] <= T0 + 71_000
    for _, event in events:
        if "r" in event:
            assert event["r"] >= event["t"]


def test_clock_is_monotonic_even_if_told_otherwise() -> None:
    sim = MarketSimulator(Market.FOREX, seed=0, tail=5)
    sim.batch(10, T0 + 5000)
    later = sim.batch(10, T0)  # a caller's clock stepping back
    assert {json.loads(d)["t"] for d in later.data} == {T0 + 5000}
    assert sim.now_ms == T0 + 5000


def test_activity_is_skewed() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=0)
    counts = Counter(topic.partition(".")[2] for topic in sim.batch(200_000, T0).topics)
    ranked = [n for _, n in counts.most_common()]
    assert counts["SPY"] == ranked[0]
    assert counts["SPY"] > 100 * counts.get(sim.universe.symbols[-1], 1)
    top = sum(ranked[: len(sim.universe) // 100])  # the hottest 1% of names
    assert top > 0.3 * sum(ranked)
    assert len(counts) > 0.8 * len(sim.universe)  # yet most of the tail prints too


def test_prices_stay_near_their_levels() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=3, tail=50)
    for i in range(50):
        sim.batch(20_000, T0 + i * 50)
    for symbol, level in (("AAPL", 190), ("SPY", 560), ("NVDA", 120)):
        assert abs(sim.price(symbol) / level - 1) < 0.05, symbol
    assert sim.anchor("AAPL") == 190


# --- output forms -----------------------------------------------------------------------


def test_batch_generate_and_frames_agree() -> None:
    a = MarketSimulator(Market.CRYPTO, seed=8, tail=20)
    b = MarketSimulator(Market.CRYPTO, seed=8, tail=20)
    c = MarketSimulator(Market.CRYPTO, seed=8, tail=20)
    batch = a.batch(300, T0)
    events = b.generate(300, T0)
    frames = c.frames(100, 3, T0)
    assert isinstance(batch, SimBatch)
    assert len(batch.data) == len(batch.topics) == 300
    assert [e.data for e in events] == batch.data
    assert all(isinstance(e, SimEvent) and e.topic == f"{e.ev}.{e.instrument}" for e in events)
    assert len(frames) == 3
    decoded = [event for frame in frames for event in json.loads(frame)]
    assert decoded == [json.loads(d) for d in batch.data]
    assert batch.frames(128)[-1].count(b'"ev"') == 300 - 2 * 128


def test_counts_are_exact_and_checked() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=0, tail=20)
    assert len(sim.batch(0, T0).data) == 0
    for i in range(1, 30):  # boundaries queue aggregates; counts still hold exactly
        assert len(sim.batch(37, T0 + i * 700).data) == 37
    with pytest.raises(ValueError, match="count"):
        sim.batch(-1, T0)
    with pytest.raises(ValueError, match="per_frame"):
        sim.frames(0, 1, T0)


def test_topics_are_interned_strings() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=0, tail=20)
    first = sim.batch(5000, T0).topics
    second = sim.batch(5000, T0 + 1).topics
    by_name = {t: t for t in first}
    assert any(t is by_name.get(t) for t in second)  # the same object, reused


# --- scenario hooks -----------------------------------------------------------------------


def _events(sim: MarketSimulator, calls: int, start: int, per_call: int = 2000) -> list[SimEvent]:
    out: list[SimEvent] = []
    for i in range(calls):
        out += sim.generate(per_call, start + i * 100)
    return out


def test_halt_stops_trades_and_resume_restarts_them() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=4, tail=50)
    _events(sim, 5, T0)
    sim.halt("AAPL")
    sim.halt("AAPL")  # twice is once
    assert sim.halted == frozenset({"AAPL"})
    halted = _events(sim, 30, T0 + 1000)
    lulds = [json.loads(e.data) for e in halted if e.topic == "LULD.AAPL"]
    assert lulds[0]["i"] == [17]
    assert sum(1 for e in halted if e.topic == "T.AAPL") == 0
    assert sum(1 for e in halted if e.topic == "Q.AAPL") > 100  # quotes go on
    assert sum(1 for e in halted if e.topic == "T.SPY") > 100  # others trade
    sim.resume("AAPL")
    resumed = _events(sim, 10, T0 + 5000)
    assert json.loads(next(e.data for e in resumed if e.topic == "LULD.AAPL"))["i"] == [18]
    assert sum(1 for e in resumed if e.topic == "T.AAPL") > 10
    assert sim.halted == frozenset()


def test_halt_applies_to_every_cluster() -> None:
    sim = MarketSimulator(Market.CRYPTO, seed=4, tail=10)
    sim.halt("BTC-USD")
    events = _events(sim, 10, T0)
    assert not any(e.topic == "XT.BTC-USD" for e in events)
    assert any(e.topic == "XQ.BTC-USD" for e in events)


def test_shock_moves_the_price() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=4, tail=50)
    _events(sim, 3, T0)
    before = sim.price("AAPL")
    after = sim.shock("AAPL", 10.0)
    assert after == pytest.approx(before * 1.10, abs=0.02)
    assert sim.anchor("AAPL") == pytest.approx(209, abs=0.01)
    events = [json.loads(e.data) for e in _events(sim, 20, T0 + 1000) if e.topic.endswith(".AAPL")]
    quotes = [q for q in events if q["ev"] == "Q"]
    assert quotes
    assert all(abs(q["bp"] / 209 - 1) < 0.04 for q in quotes)
    lulds = [ld for ld in events if ld["ev"] == "LULD"]
    assert lulds
    assert all(ld["l"] < 209 < ld["h"] and ld["l"] > 190 for ld in lulds)
    standing = sim.price("AAPL")
    assert sim.shock("AAPL", -50.0) == pytest.approx(standing / 2, abs=0.02)
    with pytest.raises(ValueError, match="zero"):
        sim.shock("AAPL", -100.0)


def test_volatility_widens_the_walk() -> None:
    calm = MarketSimulator(Market.STOCKS, seed=6, tail=10)
    wild = MarketSimulator(Market.STOCKS, seed=6, tail=10)
    wild.set_volatility("AAPL", 20.0)

    def price_range(sim: MarketSimulator) -> float:
        bids = [
            float(json.loads(e.data)["bp"]) for e in _events(sim, 20, T0) if e.topic == "Q.AAPL"
        ]
        return max(bids) - min(bids)

    assert price_range(wild) > 5 * price_range(calm)
    with pytest.raises(ValueError, match="> 0"):
        wild.set_volatility("AAPL", 0)


def test_unknown_symbols_are_refused() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=0, tail=5)
    for hook in (sim.halt, sim.resume, sim.price, sim.anchor):
        with pytest.raises(KeyError, match="NOPE"):
            hook("NOPE")
    with pytest.raises(KeyError, match="NOPE"):
        sim.shock("NOPE", 1.0)


def test_batch_is_exact_while_an_instrument_is_halted() -> None:
    sim = MarketSimulator(Market.STOCKS, seed=3)
    sim.halt("SPY")
    sim.halt("AAPL")
    for step in range(200):
        assert len(sim.batch(1 + step % 7, 1_700_000_000_000 + step).data) == 1 + step % 7
