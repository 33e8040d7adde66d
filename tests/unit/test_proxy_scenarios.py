"""Test-data scenarios: marked, deterministic, and each with its signature behaviour."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

import pytest

from massivekit.config import Market
from massivekit.models import decoder_for, route_frame
from massivekit.models.events import UnknownEvent
from massivekit.proxy.scenarios import (
    MAX_INSTRUMENTS,
    SCENARIOS,
    ScenarioFeed,
    build_test_universe,
    is_test_symbol,
)

T0 = 1_700_000_000_250  # Unix ms, mid-second on purpose
PHASE = 1_000  # events per phase unit in these tests
Event = dict[str, Any]

# The key naming the instrument, per event code (LULD/NOI/V carry ``T``, forex ``p``).
_NAME_KEYS = {"LULD": "T", "NOI": "T", "V": "T", "C": "p"}


def _name(event: Event) -> str:
    key = _NAME_KEYS.get(event["ev"])
    if key is None:
        key = "pair" if "pair" in event else "sym"
    return str(event[key])


def _events(frames: list[bytes]) -> list[Event]:
    return [event for frame in frames for event in json.loads(frame)]


def _run(feed: ScenarioFeed, events: int, *, step_ms: int = 0, chunk: int = 100) -> list[Event]:
    """``events`` events drawn ``chunk`` at a time, the clock moving ``step_ms`` per chunk."""
    out: list[Event] = []
    for i in range(events // chunk):
        out += _events(feed.frames(chunk, T0 + i * step_ms))
    return out


def _by_phase(
    feed: ScenarioFeed, events: int, *, step_ms: int = 0, chunk: int = 100
) -> dict[str, list[Event]]:
    """Events grouped by the phase they were made in (chunks never straddle a phase)."""
    phases: dict[str, list[Event]] = {}
    for i in range(events // chunk):
        phase = feed.phase()
        phases.setdefault(phase, []).extend(_events(feed.frames(chunk, T0 + i * step_ms)))
    return phases


def _of(events: list[Event], symbol: str, *evs: str) -> list[Event]:
    return [e for e in events if e["ev"] in evs and _name(e) == symbol]


# --- marking and shape -------------------------------------------------------------------


def test_scenario_names() -> None:
    assert SCENARIOS == (
        "normal",
        "high_volatility",
        "low_liquidity",
        "gap_up",
        "gap_down",
        "halt",
        "news_spike",
    )


@pytest.mark.parametrize("market", list(Market))
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_event_is_marked_and_decodes(market: Market, name: str) -> None:
    feed = ScenarioFeed(name, market, seed=2, phase_events=300)
    frames = [f for i in range(12) for f in feed.frames(100, T0 + i * 400, events_per_frame=50)]
    assert len(frames) == 24
    events = _events(frames)
    assert len(events) == 1_200
    assert all(e["test"] is True for e in events)
    assert all(is_test_symbol(_name(e)) for e in events)
    routed = [r for frame in frames for r in route_frame(frame)]
    assert all(r.instrument is not None and is_test_symbol(r.instrument) for r in routed)
    typed = [e for frame in frames for e in decoder_for(market).decode(frame)]
    assert len(typed) == 1_200
    assert not [e for e in typed if isinstance(e, UnknownEvent)]


@pytest.mark.parametrize(
    ("market", "expected"),
    [
        (Market.STOCKS, "ZZTEST1"),
        (Market.OPTIONS, "O:ZZTEST1"),
        (Market.FOREX, "ZZA/USD"),
        (Market.CRYPTO, "ZZA-USD"),
        (Market.INDICES, "I:ZZTEST1"),
        (Market.FUTURES, "ZZTEST1"),
    ],
)
def test_test_symbols_are_spelt_per_cluster(market: Market, expected: str) -> None:
    universe = build_test_universe(market, instruments=MAX_INSTRUMENTS)
    assert len(universe) == MAX_INSTRUMENTS
    assert universe.symbols[0].startswith(expected)
    assert all(is_test_symbol(s) for s in universe.symbols)
    assert sum(i.weight for i in universe) == pytest.approx(1.0)


def test_options_keep_their_contract_structure_on_a_test_root() -> None:
    universe = build_test_universe(Market.OPTIONS, instruments=4)
    for inst in universe:
        assert inst.underlying is not None
        assert inst.underlying.startswith("ZZTEST")
        assert inst.symbol.startswith(f"O:{inst.underlying}")
        assert inst.symbol[-9] in "CP"
        assert inst.symbol[-8:].isdigit()


@pytest.mark.parametrize(
    "symbol", ["AAPL", "O:SPY251107C00560000", "EUR/USD", "BTC-USD", "I:SPX", "ESZ5", "Z", "ZTS"]
)
def test_real_symbols_are_not_test_symbols(symbol: str) -> None:
    assert not is_test_symbol(symbol)


@pytest.mark.parametrize(
    "symbol", ["ZZTEST1", "O:ZZTEST1251107C00560000", "ZZA/USD", "ZZA-USD", "I:ZZTEST3"]
)
def test_test_symbols_are_recognised(symbol: str) -> None:
    assert is_test_symbol(symbol)


def test_same_arguments_same_bytes() -> None:
    def draw() -> list[bytes]:
        feed = ScenarioFeed("news_spike", Market.STOCKS, seed=9, phase_events=200)
        return [f for i in range(10) for f in feed.frames(70, T0 + i * 300)]

    assert draw() == draw()
    other = ScenarioFeed("news_spike", Market.STOCKS, seed=10, phase_events=200)
    assert other.frames(70, T0) != draw()[:1]


def test_counts_are_exact_and_frames_split() -> None:
    feed = ScenarioFeed("low_liquidity", Market.STOCKS)
    assert feed.frames(0, T0) == []
    frames = feed.frames(250, T0, events_per_frame=100)
    assert [len(json.loads(f)) for f in frames] == [100, 100, 50]
    batch = feed.batch(33, T0 + 1_000)
    assert len(batch.topics) == len(batch.data) == 33
    assert feed.produced == 283
    assert all(t.partition(".")[2] in feed.symbols for t in batch.topics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "crash"}, "unknown scenario"),
        ({"market": "bonds"}, "bonds"),
        ({"instruments": 0}, "instruments"),
        ({"instruments": MAX_INSTRUMENTS + 1}, "instruments"),
        ({"phase_events": 0}, "phase_events"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "normal", "market": Market.STOCKS, **kwargs}
    with pytest.raises(ValueError, match=message):
        ScenarioFeed(args.pop("name"), args.pop("market"), **args)


def test_bad_counts() -> None:
    feed = ScenarioFeed("normal", Market.STOCKS)
    with pytest.raises(ValueError, match="count"):
        feed.batch(-1, T0)
    with pytest.raises(ValueError, match="events_per_frame"):
        feed.frames(10, T0, events_per_frame=0)
    with pytest.raises(ValueError, match="spread_factor"):
        build_test_universe(Market.STOCKS, spread_factor=0)


# --- phases and signatures ---------------------------------------------------------------


def test_phases_advance_over_the_events_produced() -> None:
    feed = ScenarioFeed("halt", Market.STOCKS, phase_events=100)
    seen = []
    for i in range(8):
        seen.append(feed.phase())
        feed.frames(50, T0 + i)
    # normal 1 unit, luld 1, halted 2, resumed for ever: 50 events a step.
    assert seen == ["normal"] * 2 + ["luld"] * 2 + ["halted"] * 4
    assert feed.phase() == "resumed"
    feed.frames(10_000, T0 + 10)
    assert feed.phase() == "resumed"


def test_normal_stays_normal() -> None:
    feed = ScenarioFeed("normal", Market.STOCKS)
    feed.frames(5_000, T0)
    assert feed.phase() == "normal"


@pytest.mark.parametrize(("name", "sign"), [("gap_up", 1), ("gap_down", -1)])
def test_gap_moves_the_focus_at_once(name: str, sign: int) -> None:
    feed = ScenarioFeed(name, Market.STOCKS, seed=4, phase_events=PHASE)
    phases = _by_phase(feed, 3 * PHASE)
    assert set(phases) == {"before", "gapped"}
    before = [e["p"] for e in _of(phases["before"], feed.focus, "T")]
    after = [e["p"] for e in _of(phases["gapped"], feed.focus, "T")]
    assert before
    assert after
    # A 10% gap, and the walk stays within a few percent of its new level.
    assert sign * (after[0] - before[-1]) / before[-1] > 0.07
    assert sign * (min(after) if sign > 0 else max(after)) > sign * max(before) * (1 + sign * 0.05)


def test_halt_bands_then_no_trades_then_resumption() -> None:
    feed = ScenarioFeed("halt", Market.STOCKS, seed=5, phase_events=PHASE)
    # 300 ms per 100 events: the clock crosses seconds, as band updates need.
    phases = _by_phase(feed, 6 * PHASE, step_ms=300)
    assert list(phases) == ["normal", "luld", "halted", "resumed"]
    focus = feed.focus
    bands = [e["i"] for e in _of(phases["luld"], focus, "LULD")]
    assert [21] in bands  # a fresh band after the press towards its limit
    halted = phases["halted"]
    assert _of(halted, focus, "T") == []  # no trades while halted
    assert _of(halted, focus, "Q")  # quotes go on
    assert next(e["i"] for e in _of(halted, focus, "LULD")) == [17]
    resumed = phases["resumed"]
    assert next(e["i"] for e in _of(resumed, focus, "LULD")) == [18]
    assert _of(resumed, focus, "T")
    assert _of(phases["normal"], focus, "T")
    assert _of(phases["luld"], focus, "T")
    # The other test instruments trade through the focus's halt.
    others = {_name(e) for e in halted if e["ev"] == "T"}
    assert others
    assert focus not in others


def _spread_and_trades(events: list[Event]) -> tuple[float, float]:
    quotes = [e for e in events if e["ev"] == "Q"]
    spread = statistics.mean((e["ap"] - e["bp"]) / e["bp"] for e in quotes)
    trades = sum(e["ev"] == "T" for e in events) / len(events)
    return spread, trades


def test_low_liquidity_quotes_wider_and_trades_less() -> None:
    normal = _run(ScenarioFeed("normal", Market.STOCKS, seed=6), 4_000)
    thin_feed = ScenarioFeed("low_liquidity", Market.STOCKS, seed=6)
    thin = _run(thin_feed, 4_000)
    assert thin_feed.phase() == "thin"
    normal_spread, normal_trades = _spread_and_trades(normal)
    thin_spread, thin_trades = _spread_and_trades(thin)
    assert thin_spread > 3 * normal_spread
    assert thin_trades < normal_trades / 2


def test_low_liquidity_keeps_second_boundary_events() -> None:
    feed = ScenarioFeed("low_liquidity", Market.STOCKS, seed=6)
    events = _run(feed, 3_000, step_ms=500)
    kinds = Counter(e["ev"] for e in events)
    assert kinds["A"] > 0
    assert kinds["LULD"] > 0


def test_news_spike_bursts_and_moves_the_focus() -> None:
    feed = ScenarioFeed("news_spike", Market.STOCKS, seed=8, phase_events=PHASE)
    phases = _by_phase(feed, 3 * PHASE)
    assert list(phases) == ["quiet", "spike", "after"]
    focus = feed.focus

    def share(events: list[Event]) -> float:
        return sum(_name(e) == focus for e in events if e["ev"] in ("T", "Q")) / len(events)

    def volume(events: list[Event]) -> int:
        return sum(e["s"] for e in _of(events, focus, "T"))

    quiet, spike, after = phases["quiet"], phases["spike"], phases["after"]
    assert share(spike) == pytest.approx(0.5, abs=0.02)
    assert share(spike) > 1.3 * share(quiet)
    assert volume(spike) > 1.3 * volume(quiet)
    last_quiet = _of(quiet, focus, "T")[-1]["p"]
    first_spike = _of(spike, focus, "T")[0]["p"]
    assert (first_spike - last_quiet) / last_quiet > 0.04
    assert share(after) < share(spike)


def test_high_volatility_widens_the_walk() -> None:
    def bid_range(events: list[Event], symbol: str) -> float:
        bids = [e["bp"] for e in _of(events, symbol, "Q")]
        return float((max(bids) - min(bids)) / bids[0])

    calm_feed = ScenarioFeed("normal", Market.STOCKS, seed=12, phase_events=PHASE)
    calm = _run(calm_feed, 8 * PHASE)
    wild_feed = ScenarioFeed("high_volatility", Market.STOCKS, seed=12, phase_events=PHASE)
    phases = _by_phase(wild_feed, 8 * PHASE)
    assert list(phases) == ["normal", "volatile"]
    focus = wild_feed.focus
    assert bid_range(phases["volatile"], focus) > 2 * bid_range(calm[PHASE:], focus)


def test_single_instrument_spike_still_fills() -> None:
    feed = ScenarioFeed("news_spike", Market.CRYPTO, instruments=1, phase_events=50)
    events = _run(feed, 300, chunk=30)
    assert len(events) == 300
    assert {_name(e) for e in events} == {feed.focus}


def test_a_lone_instrument_can_be_halted() -> None:
    feed = ScenarioFeed("halt", Market.STOCKS, instruments=1, phase_events=100)
    phases = _by_phase(feed, 600, chunk=50)
    assert _of(phases["halted"], feed.focus, "T") == []
    assert sum(len(v) for v in phases.values()) == 600
