"""Test-data scenarios the proxy can mix into a feed: pure, no I/O.

A :class:`ScenarioFeed` makes Massive WebSocket frames for a small set of *test
instruments* and walks them through a scenario (a gap, a halt, a news spike...)
in *phases*, each lasting a number of the events it produced:

===============  ===============================================================
scenario         phases (the last one lasts for ever)
===============  ===============================================================
normal           ``normal``
high_volatility  ``normal`` → ``volatile`` (every step and band several times wider)
low_liquidity    ``thin`` (quotes several times wider, three trades in four dropped)
gap_up           ``before`` → ``gapped`` (the focus instrument jumps up 10%)
gap_down         ``before`` → ``gapped`` (the focus instrument drops 10%)
halt             ``normal`` → ``luld`` (pressed against its band) → ``halted``
                 (no trades; a ``LULD`` with indicator 17) → ``resumed`` (indicator 18)
news_spike       ``quiet`` → ``spike`` (a 6% move, half of all events, wide steps)
                 → ``after``
===============  ===============================================================

The *focus* instrument is the first (hottest) test instrument.

**How test data is marked**, so no one mistakes it for real data:

- every symbol carries the reserved ``ZZ`` start, after the cluster's prefix:
  stocks ``ZZTEST1``..``ZZTEST26``, options ``O:ZZTEST1251107C00560000`` (the
  chains of the test stocks), futures ``ZZTEST1Z5``, indices ``I:ZZTEST1``,
  forex ``ZZA/USD``, crypto ``ZZA-USD`` (currency codes starting ``ZZ`` are
  unassigned in ISO 4217, and no listed ticker starts ``ZZTEST``);
  :func:`is_test_symbol` tells them apart;
- every event carries ``"test":true`` (decoders ignore fields they do not know,
  the official client included).

The events themselves come from the shared market simulator
(:class:`massivekit.sim.market.MarketSimulator`, the same one the mock streams)
over a universe of the test instruments, driven through its scenario hooks
(``shock``, ``halt``, ``resume``, ``set_volatility``).

As on the real feed, ``LULD`` band updates and aggregates come at second
boundaries, so they appear only when the ``now_ms`` given to
:meth:`ScenarioFeed.frames` moves across seconds; the halt and resumption
``LULD`` events come at once.

Filtering phases (``thin``, ``spike``) draw more events from the simulator than
they return and skip ticks: sequence numbers then skip too (Massive documents
``q`` as increasing, not consecutive), and aggregates count the skipped prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from massivekit.config import Market
from massivekit.sim.market import MarketSimulator, SimBatch
from massivekit.sim.universe import Instrument, Universe

__all__ = [
    "MAX_INSTRUMENTS",
    "SCENARIOS",
    "TEST_FIELD",
    "ScenarioFeed",
    "build_test_universe",
    "is_test_symbol",
]

SCENARIOS: tuple[str, ...] = (
    "normal",
    "high_volatility",
    "low_liquidity",
    "gap_up",
    "gap_down",
    "halt",
    "news_spike",
)
"""The scenario names, as :class:`ScenarioFeed` and the proxy's admin command take them."""

MAX_INSTRUMENTS = 26
"""Test instruments per cluster at most: forex and crypto spell them ``ZZA``..``ZZZ``."""

TEST_FIELD = b'"test":true'
"""The field added to every test event."""

_MARK = b"," + TEST_FIELD + b"}"
_TEST_ROOT = "ZZTEST"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PREFIXES = ("O:", "I:", "X:", "C:")
# Tick events: the only ones a filtering phase may skip (aggregates, LULD, NOI and
# book snapshots always pass).
_TICK_EVS = frozenset({"T", "Q", "XT", "XQ", "C", "V"})
_TRADE_EVS = frozenset({"T", "XT"})

_VOLATILE = 6.0  # high_volatility: steps and bands six times the default
_THIN_SPREAD = 6  # low_liquidity: quotes six times as wide
_THIN_KEEP = 4  # low_liquidity: one trade in four prints
_GAP_PCT = 10.0
_LULD_PCT = 4.0  # halt: pressed towards the 5% band of a tier-1 name
_LULD_VOLATILITY = 3.0
_SPIKE_PCT = 6.0
_SPIKE_VOLATILITY = 4.0
_SPIKE_SHARE = 0.5  # news_spike: the focus instrument makes half of all events
_DRAW_FACTOR = 3  # raw events drawn per event needed in a filtering phase


def is_test_symbol(symbol: str) -> bool:
    """Whether ``symbol`` (an instrument as on the wire) names a test instrument.

    Args:
        symbol: e.g. ``"ZZTEST1"``, ``"O:ZZTEST1251107C00560000"``, ``"ZZA/USD"``.

    Returns:
        True for the reserved ``ZZ`` start after any cluster prefix.
    """
    for prefix in _PREFIXES:
        if symbol.startswith(prefix):
            symbol = symbol[len(prefix) :]
            break
    return symbol.startswith("ZZ")


def _test_name(family: Market, i: int) -> str:
    """The test symbol of rank ``i`` (0-based) for a cluster without contracts."""
    if family is Market.FOREX:
        return f"ZZ{_LETTERS[i]}/USD"
    if family is Market.CRYPTO:
        return f"ZZ{_LETTERS[i]}-USD"
    if family is Market.INDICES:
        return f"I:{_TEST_ROOT}{i + 1}"
    return f"{_TEST_ROOT}{i + 1}"


def _renamed(inst: Instrument, family: Market, i: int, roots: dict[str, str]) -> Instrument:
    """``inst`` under its test name; contracts keep their structure on a test root."""
    if family is Market.OPTIONS or family is Market.FUTURES:
        root = inst.underlying or inst.symbol
        test_root = roots.setdefault(root, f"{_TEST_ROOT}{len(roots) + 1}")
        body = inst.symbol.removeprefix("O:")
        symbol = test_root + body[len(root) :]
        if family is Market.OPTIONS:
            symbol = "O:" + symbol
        return dataclasses.replace(inst, symbol=symbol, underlying=test_root)
    return dataclasses.replace(inst, symbol=_test_name(family, i))


def build_test_universe(
    market: Market | str, *, seed: int = 0, instruments: int = 10, spread_factor: int = 1
) -> Universe:
    """The test instruments of one cluster: the real top names, renamed and marked.

    Each keeps the price level, tick, spread and activity of the real instrument of
    the same rank, so test data moves like the real thing.

    Args:
        market: the cluster.
        seed: passed to the real universe the levels are taken from.
        instruments: how many, 1 to :data:`MAX_INSTRUMENTS`.
        spread_factor: widen every typical spread by this factor.

    Returns:
        A universe of test instruments, hottest first.

    Raises:
        ValueError: ``instruments`` or ``spread_factor`` is out of range, or
            ``market`` is unknown.
    """
    market = Market(market)
    if not 1 <= instruments <= MAX_INSTRUMENTS:
        raise ValueError(f"instruments must be 1..{MAX_INSTRUMENTS}")
    if spread_factor < 1:
        raise ValueError("spread_factor must be >= 1")
    family = market.family
    real = Universe.for_market(market, seed=seed, tail=instruments)
    roots: dict[str, str] = {}
    rows = [
        _renamed(inst, family, i, roots) for i, inst in enumerate(real.instruments[:instruments])
    ]
    total = sum(inst.weight for inst in rows)
    rows = [
        dataclasses.replace(inst, weight=inst.weight / total, spread=inst.spread * spread_factor)
        for inst in rows
    ]
    return Universe(market, rows, seed, real.as_of)


# --- phases ------------------------------------------------------------------------------

Action = Callable[[MarketSimulator, str], None]
"""What entering a phase does to the simulator: ``action(sim, focus_symbol)``."""


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of a scenario.

    Attributes:
        name: what :meth:`ScenarioFeed.phase` says during it.
        length: how many events it lasts, in units of ``phase_events`` (``0``: for ever).
        enter: applied to the simulator when the phase starts.
        trade_keep: keep one trade in this many (1 keeps all).
        focus_share: the share of events the focus instrument makes (``None``: as drawn).
    """

    name: str
    length: int = 0
    enter: Action | None = None
    trade_keep: int = 1
    focus_share: float | None = None


def _each(sim: MarketSimulator, apply: Callable[[str], object]) -> None:
    for symbol in sim.universe.symbols:
        apply(symbol)


def _volatile(sim: MarketSimulator, focus: str) -> None:
    _each(sim, lambda s: sim.set_volatility(s, _VOLATILE))


def _gap(pct: float) -> Action:
    def enter(sim: MarketSimulator, focus: str) -> None:
        sim.shock(focus, pct)

    return enter


def _press_band(sim: MarketSimulator, focus: str) -> None:
    # A 4% move leaves the last band 1% behind: a new band follows at the next second.
    sim.shock(focus, _LULD_PCT)
    sim.set_volatility(focus, _LULD_VOLATILITY)


def _halt(sim: MarketSimulator, focus: str) -> None:
    sim.halt(focus)


def _resume(sim: MarketSimulator, focus: str) -> None:
    sim.resume(focus)
    sim.set_volatility(focus, 1.0)


def _spike(sim: MarketSimulator, focus: str) -> None:
    sim.shock(focus, _SPIKE_PCT)
    sim.set_volatility(focus, _SPIKE_VOLATILITY)


def _calm(sim: MarketSimulator, focus: str) -> None:
    sim.set_volatility(focus, 1.0)


_PHASES: dict[str, tuple[Phase, ...]] = {
    "normal": (Phase("normal"),),
    "high_volatility": (Phase("normal", 1), Phase("volatile", enter=_volatile)),
    "low_liquidity": (Phase("thin", trade_keep=_THIN_KEEP),),
    "gap_up": (Phase("before", 1), Phase("gapped", enter=_gap(_GAP_PCT))),
    "gap_down": (Phase("before", 1), Phase("gapped", enter=_gap(-_GAP_PCT))),
    "halt": (
        Phase("normal", 1),
        Phase("luld", 1, enter=_press_band),
        Phase("halted", 2, enter=_halt),
        Phase("resumed", enter=_resume),
    ),
    "news_spike": (
        Phase("quiet", 1),
        Phase("spike", 1, enter=_spike, focus_share=_SPIKE_SHARE),
        Phase("after", enter=_calm),
    ),
}


# --- the feed ----------------------------------------------------------------------------


class ScenarioFeed:
    """Frames of marked test events, walking through one scenario's phases.

    Usage::

        feed = ScenarioFeed("halt", Market.STOCKS, seed=3)
        frames = feed.frames(1_000, now_ms=time_ms())   # bytes, as Massive sends them
        feed.phase()                                      # "normal", later "luld", ...

    Same arguments and same calls, same bytes.
    """

    def __init__(
        self,
        name: str,
        market: Market | str,
        *,
        seed: int = 0,
        instruments: int = 10,
        phase_events: int = 2_000,
    ) -> None:
        """Build the test universe and its simulator, and enter the first phase.

        Args:
            name: one of :data:`SCENARIOS`.
            market: the cluster the events belong to.
            seed: the one source of randomness.
            instruments: how many test instruments, 1 to :data:`MAX_INSTRUMENTS`.
            phase_events: events per unit of phase length (every phase but the last
                lasts one or two units).

        Raises:
            ValueError: an unknown scenario or cluster, or a count out of range.
        """
        if name not in _PHASES:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        if phase_events < 1:
            raise ValueError("phase_events must be >= 1")
        self.name = name
        self.market = Market(market)
        spread = _THIN_SPREAD if name == "low_liquidity" else 1
        self.universe = build_test_universe(
            self.market, seed=seed, instruments=instruments, spread_factor=spread
        )
        self.focus = self.universe.symbols[0]
        """The instrument the scenario's events happen to (gaps, halt, news)."""
        self._sim = MarketSimulator(self.market, seed, universe=self.universe)
        self._phase_events = phase_events
        self._phases = _PHASES[name]
        self._index = -1
        self._left: int | None = None
        self._produced = 0
        self._trades = 0
        self._carry_topics: list[str] = []
        self._carry_data: list[bytes] = []
        self._kinds: dict[str, tuple[bool, bool, bool]] = {}
        self._next_phase()

    @property
    def symbols(self) -> tuple[str, ...]:
        """The test instruments, hottest first."""
        return self.universe.symbols

    @property
    def produced(self) -> int:
        """Events returned so far."""
        return self._produced

    def phase(self) -> str:
        """The phase the next events belong to (the last one's name once it is reached)."""
        return self._phases[self._index].name

    def batch(self, count: int, now_ms: int) -> SimBatch:
        """The next ``count`` events, marked, as parallel topic/data lists.

        Args:
            count: exactly how many events.
            now_ms: the time now, Unix ms (it never goes back).

        Returns:
            ``count`` events; ``data[i]`` is the JSON object of topic ``topics[i]``.

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        topics: list[str] = []
        data: list[bytes] = []
        while len(data) < count:
            n = count - len(data)
            if self._left is not None:
                n = min(n, self._left)
            self._draw(n, now_ms, topics, data)
            if self._left is not None:
                self._left -= n
                if self._left == 0:
                    self._next_phase()
        self._produced += count
        return SimBatch(topics, [d[:-1] + _MARK for d in data])

    def frames(self, count_events: int, now_ms: int, events_per_frame: int = 100) -> list[bytes]:
        """The next ``count_events`` events as WebSocket frames (JSON arrays).

        Args:
            count_events: events in all.
            now_ms: the time now, Unix ms.
            events_per_frame: events per frame (the last frame may hold fewer).

        Returns:
            The frames, in order.

        Raises:
            ValueError: a count is negative or ``events_per_frame`` is zero.
        """
        if events_per_frame < 1:
            raise ValueError("events_per_frame must be >= 1")
        return self.batch(count_events, now_ms).frames(events_per_frame)

    def _next_phase(self) -> None:
        self._index += 1
        phase = self._phases[self._index]
        if phase.enter is not None:
            phase.enter(self._sim, self.focus)
        self._left = phase.length * self._phase_events or None

    def _draw(self, n: int, now_ms: int, topics: list[str], data: list[bytes]) -> None:
        """Append ``n`` events of the current phase to ``topics`` and ``data``."""
        phase = self._phases[self._index]
        take = min(n, len(self._carry_data))
        topics += self._carry_topics[:take]
        data += self._carry_data[:take]
        del self._carry_topics[:take], self._carry_data[:take]
        n -= take
        if phase.trade_keep == 1 and phase.focus_share is None:
            self._exactly(n, now_ms, topics, data)
        else:
            self._filtered(phase, n, now_ms, topics, data)

    def _exactly(self, n: int, now_ms: int, topics: list[str], data: list[bytes]) -> None:
        """Append ``n`` events straight from the simulator.

        ``MarketSimulator.batch`` may return fewer than asked when a draw lands on
        a halted instrument's trade; drawing again tops the count up.
        """
        want = len(data) + n
        for _ in range(1_000):
            missing = want - len(data)
            if missing <= 0:
                return
            raw = self._sim.batch(missing, now_ms)
            topics += raw.topics
            data += raw.data
        raise RuntimeError("the simulator makes no events: every instrument is halted")

    def _filtered(
        self, phase: Phase, n: int, now_ms: int, topics: list[str], data: list[bytes]
    ) -> None:
        """Draw raw events until ``n`` pass the phase's filters; carry spare non-ticks."""
        share = phase.focus_share
        focus_quota = n if share is None or len(self.universe) == 1 else round(n * share)
        other_quota = n - focus_quota if share is not None else n
        kept = focused = 0
        for rounds in range(1_000):
            if kept >= n:
                return
            if rounds == 8:  # the filters cannot be met (a silent focus): stop filtering
                focus_quota = other_quota = n
            raw = self._sim.batch(max(64, (n - kept) * _DRAW_FACTOR), now_ms)
            for topic, item in zip(raw.topics, raw.data, strict=True):
                tick, trade, focus = self._kind(topic)
                if not tick:
                    if kept < n:
                        topics.append(topic)
                        data.append(item)
                        kept += 1
                    else:
                        self._carry_topics.append(topic)
                        self._carry_data.append(item)
                    continue
                if kept >= n:
                    continue  # spare ticks are dropped, never delivered late
                if trade and phase.trade_keep > 1:
                    self._trades += 1
                    if self._trades % phase.trade_keep:
                        continue
                if focus and focused >= focus_quota:
                    continue
                if share is not None and not focus and kept - focused >= other_quota:
                    continue
                focused += focus
                topics.append(topic)
                data.append(item)
                kept += 1
        raise AssertionError("unreachable: filters are lifted after eight rounds")

    def _kind(self, topic: str) -> tuple[bool, bool, bool]:
        """(is a tick, is a trade, is the focus instrument's) of ``topic``, cached."""
        kind = self._kinds.get(topic)
        if kind is None:
            ev, _, instrument = topic.partition(".")
            kind = (ev in _TICK_EVS, ev in _TRADE_EVS, instrument == self.focus)
            self._kinds[topic] = kind
        return kind
