"""A deterministic market simulator for the mock Massive server: pure, no I/O.

:class:`MarketSimulator` turns ``(market, seed)`` into an endless stream of Massive
WebSocket events, each already encoded as the JSON object the real feed sends,
together with its subscription topic (``ev + "." + instrument``) so a server can
route it with one dict lookup and never decode it. The caller drives the clock:
every call says what time it is (Unix ms), which makes tests reproducible and lets
the server run the simulator from its own timer.

Keys come in the order Massive sends them: that of the spec's example of each
event (a key the example lacks, such as ``trfi``, where the event's schema lists
it; futures, absent from the spec, as their documentation and
:mod:`massivekit.models.futures` have it).

Same seed and same calls, same bytes. What the stream looks like, per cluster:

========  ==================  ==============================================
cluster   tick events         at second boundaries
========  ==================  ==============================================
stocks    ``T``, ``Q``        ``A``; ``AM`` each minute; ``LULD``; ``NOI``
options   ``T``, ``Q``        ``A``; ``AM`` each minute
futures   ``T``, ``Q``        ``A``; ``AM`` each minute
forex     ``C``               ``CAS``; ``CA`` each minute
crypto    ``XT``, ``XQ``      ``XAS``; ``XA`` each minute; ``XL2``
indices   ``V``               ``A``; ``AM`` each minute
========  ==================  ==============================================

``q`` is one counter for the whole feed. Massive documents it as increasing and
unique per ticker but not always sequential; a feed-wide counter is exactly that
(and its examples' values, in the tens of millions, look feed-wide too), and it
lets a batch's numbers be made in one C-level pass.

Speed is the point (a benchmark server needs over a million events a second from
one process), hence :meth:`MarketSimulator.batch`, which returns two plain lists
and allocates no object per event the garbage collector would have to track.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from itertools import accumulate, cycle, islice
from typing import NamedTuple

from massivekit.config import Market
from massivekit.sim.market_bars import (
    LULD_BAND,
    LULD_HALT,
    LULD_RESUME,
    Aggregator,
    luld_event,
    noi_event,
    xl2_event,
)
from massivekit.sim.market_book import Book, build_schedule, price_value
from massivekit.sim.market_ticks import (
    CryptoFeed,
    ForexFeed,
    FuturesFeed,
    IndicesFeed,
    OptionsFeed,
    StocksFeed,
    TickFeed,
)
from massivekit.sim.universe import Universe

__all__ = ["MarketSimulator", "SimBatch", "SimEvent"]

_GAPS = 4099  # prime, like the row table, so no two cycles line up
_NOI_PER_SECOND = 0.25  # imbalance messages are rare outside the auctions
_XL2_PAIRS = 5  # the hottest pairs get a book snapshot each second they trade
_BOUNDARY_EVS: dict[Market, tuple[str, ...]] = {
    Market.STOCKS: ("LULD", "NOI"),
    Market.CRYPTO: ("XL2",),
}


_MAX_EMPTY_ROUNDS = 64
"""Refill rounds that may produce nothing before a batch is cut short."""


class SimEvent(NamedTuple):
    """One encoded event and the keys a server routes it by."""

    ev: str
    instrument: str
    topic: str
    """``ev + "." + instrument``, interned: the subscription topic that selects it."""
    data: bytes
    """The event's JSON object, exactly as it goes on the wire (inside a frame's array)."""


class SimBatch(NamedTuple):
    """Events as two parallel lists: the cheap form for a server to route.

    ``topics[i]`` is the subscription topic of the event whose JSON is ``data[i]``.
    """

    topics: list[str]
    data: list[bytes]

    def events(self) -> list[SimEvent]:
        """The same events as :class:`SimEvent` tuples (convenient, and slower)."""
        routes: dict[str, tuple[str, str, str]] = {}
        for topic in set(self.topics):
            ev, _, instrument = topic.partition(".")  # the prefix ends at the first dot
            routes[topic] = (ev, instrument, topic)
        new, event = tuple.__new__, SimEvent  # skips the NamedTuple's Python-level __new__
        return [
            new(event, (*routes[topic], data))
            for topic, data in zip(self.topics, self.data, strict=True)
        ]

    def frames(self, per_frame: int) -> list[bytes]:
        """Join the events into WebSocket frames (JSON arrays) of ``per_frame`` events.

        Raises:
            ValueError: ``per_frame`` is not positive.
        """
        if per_frame < 1:
            raise ValueError("per_frame must be >= 1")
        data = self.data
        return [
            b"[" + b",".join(data[i : i + per_frame]) + b"]" for i in range(0, len(data), per_frame)
        ]


def _make_feed(book: Book, family: Market, rng: random.Random) -> TickFeed:
    if family is Market.STOCKS:
        return StocksFeed(book, rng)
    if family is Market.OPTIONS:
        return OptionsFeed(book, rng)
    if family is Market.FUTURES:
        return FuturesFeed(book, rng)
    if family is Market.CRYPTO:
        return CryptoFeed(book, rng)
    if family is Market.FOREX:
        return ForexFeed(book, rng)
    return IndicesFeed(book, rng)


class MarketSimulator:
    """Random-walk prices and the Massive events they make, for one cluster.

    Usage::

        sim = MarketSimulator(Market.STOCKS, seed=7)
        batch = sim.batch(1000, now_ms=1_700_000_000_000)
        for topic, data in zip(batch.topics, batch.data): ...

    Each instrument walks in ticks around an anchor (its reference price), within
    a band of a few percent, and quotes a few ticks wide; trades print at the
    standing bid or ask. Activity follows the universe's Zipf weights.
    """

    def __init__(
        self,
        market: Market | str,
        seed: int = 0,
        *,
        universe: Universe | None = None,
        tail: int | None = None,
    ) -> None:
        """Build the simulator (and, unless given, its universe).

        Args:
            market: the cluster, e.g. ``Market.STOCKS`` or ``"futures/cme"``.
            seed: the one source of randomness; same seed, same stream.
            universe: instruments to trade; default ``Universe.for_market(market,
                seed=seed, tail=tail)``.
            tail: size of the synthetic tail when the universe is built here.

        Raises:
            ValueError: ``market`` is unknown, or ``universe`` is of another cluster.
        """
        self.market = Market(market)
        self.family = self.market.family
        self.seed = seed
        if universe is None:
            universe = Universe.for_market(self.market, seed=seed, tail=tail)
        elif universe.market.family is not self.family:
            raise ValueError(f"universe is {universe.market.value}, not {self.market.value}")
        self.universe = universe
        rng = random.Random(f"massivekit-sim:{self.market.value}:{seed}")
        self._rng = rng
        self._book = Book(universe)
        self._picks = cycle(build_schedule([i.weight for i in universe.instruments], rng))
        self._feed = _make_feed(self._book, self.family, rng)
        self._bars = Aggregator(self._book, self.family)
        self._gaps = cycle([1 if rng.random() < 0.9 else rng.randint(2, 6) for _ in range(_GAPS)])
        self._q = rng.randrange(10**6, 10**8)  # the feed has been running a while
        self._t = 0
        self._second: int | None = None
        self._minute = 0
        self._luld_ref: dict[int, int] = {}
        self._extra_topics = {
            ev: self._book.topics(ev) for ev in _BOUNDARY_EVS.get(self.family, ())
        }
        self._pending_topics: list[str] = []
        self._pending_data: list[bytes] = []
        self._stamped: tuple[int, list[bytes], bytes] | None = None
        """The time of the last batch, its fragments and its sequence format."""

    # --- the stream --------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The simulated clock: the latest time given to :meth:`batch` (0 before any)."""
        return self._t

    def batch(self, count: int, now_ms: int) -> SimBatch:
        """The next ``count`` events, stamped ``now_ms``, as parallel topic/data lists.

        Events due at a second or minute boundary crossed since the last call
        (aggregates, LULD, ...) come first, then tick events. Time never goes back:
        a ``now_ms`` earlier than the last one is taken as the last one.

        Args:
            count: exactly how many events to return.
            now_ms: the current time in Unix milliseconds.

        Returns:
            ``count`` events.

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        self._advance(now_ms)
        topics = self._pending_topics[:count]
        data = self._pending_data[:count]
        del self._pending_topics[:count], self._pending_data[:count]
        self._fill(count - len(data), topics, data)
        return SimBatch(topics, data)

    def generate(self, count: int, now_ms: int) -> list[SimEvent]:
        """Like :meth:`batch`, as a list of :class:`SimEvent`.

        Raises:
            ValueError: ``count`` is negative.
        """
        return self.batch(count, now_ms).events()

    def frames(self, events_per_frame: int, count_frames: int, now_ms: int) -> list[bytes]:
        """``count_frames`` WebSocket frames of ``events_per_frame`` events each.

        Raises:
            ValueError: a count is negative, or ``events_per_frame`` is zero.
        """
        if count_frames < 0:
            raise ValueError("count_frames must be >= 0")
        return self.batch(events_per_frame * count_frames, now_ms).frames(events_per_frame)

    def _fill(self, count: int, topics: list[str], data: list[bytes]) -> None:
        """Append exactly ``count`` events (fewer only if nothing at all can trade)."""
        feed, t = self._feed, self._t
        stamped = self._stamped
        if stamped is None or stamped[0] != t:  # the fragments of this time, made once
            stamped = self._stamped = (t, feed.time_frags(t), feed.sequence_format(t))
        _, tfr, seq_format = stamped
        empty_rounds = 0
        while count > 0 and empty_rounds < _MAX_EMPTY_ROUNDS:
            before = len(data)
            qbs: Iterable[bytes] = self._sequence(count, seq_format) if feed.uses_sequence else ()
            feed.run(islice(self._picks, count), qbs, tfr, topics.append, data.append)
            made = len(data) - before
            # A halted instrument's trade is dropped: draw again. A small refill
            # may land on halted names only, so give up only after many empty
            # rounds (every instrument halted).
            empty_rounds = empty_rounds + 1 if made == 0 else 0
            count -= made

    def _sequence(self, count: int, template: bytes) -> Iterable[bytes]:
        """The next ``count`` sequence numbers as wire text (``template % q``), made at C speed."""
        qs = list(accumulate(islice(self._gaps, count), initial=self._q))
        self._q = qs[-1]
        return map(template.__mod__, islice(qs, 1, None))

    def _next_q(self) -> int:
        self._q += next(self._gaps)
        return self._q

    def _emit(self, topic: str, data: bytes) -> None:
        self._pending_topics.append(topic)
        self._pending_data.append(data)

    # --- the clock -----------------------------------------------------------------------

    def _advance(self, now_ms: int) -> None:
        """Move the clock to ``now_ms``; flush the bars of any boundary crossed."""
        t = max(now_ms, self._t)
        second, minute = t // 1000, t // 60_000
        if self._second is None:
            self._second, self._minute = second, minute
        elif second != self._second:
            self._t = t
            self._flush_second(self._second)
            self._second = second
            if minute != self._minute:
                self._bars.flush_minute(self._minute * 60_000, self._emit)
                self._minute = minute
        self._t = t

    def _flush_second(self, second: int) -> None:
        bars = self._bars.flush_second(second * 1000, self._emit)
        if self.family is Market.STOCKS:
            self._luld_updates(bars)
            if bars and self._rng.random() < _NOI_PER_SECOND:
                k = self._rng.choice(sorted(bars)[:200])
                self._emit(
                    self._extra_topics["NOI"][k],
                    noi_event(self._book, k, self._rng, self._t, self._next_q()),
                )
        elif self.family is Market.CRYPTO:
            for k in sorted(bars)[:_XL2_PAIRS]:
                self._emit(
                    self._extra_topics["XL2"][k], xl2_event(self._book, k, self._rng, self._t)
                )

    def _luld_updates(self, bars: Iterable[int]) -> None:
        """New LULD bands for instruments first seen, or 1% or more from the last band."""
        book, refs = self._book, self._luld_ref
        for k in sorted(bars):
            key = book.bid[k]
            ref = refs.get(k)
            if ref is None or abs(key - ref) * 100 >= ref - book.decimals[k]:
                refs[k] = key
                self._emit_luld(k, LULD_BAND)

    def _emit_luld(self, k: int, indicator: int) -> None:
        book = self._book
        data = luld_event(book, k, book.bid[k], indicator, self._t, self._next_q())
        self._emit(self._extra_topics["LULD"][k], data)

    # --- scenario hooks ------------------------------------------------------------------

    def _position(self, symbol: str) -> int:
        try:
            return self._book.index[symbol]
        except KeyError:
            raise KeyError(f"{symbol!r} is not in the {self.market.value} universe") from None

    def shock(self, symbol: str, pct: float) -> float:
        """Move ``symbol`` by ``pct`` percent at once (a gap up or down), for good.

        The walk re-centres on the new level; LULD bands follow on the next second.

        Args:
            symbol: the instrument, as on the wire.
            pct: the move in percent, e.g. ``-8.0`` for a fall of 8%.

        Returns:
            The new bid.

        Raises:
            KeyError: the symbol is not in this universe.
            ValueError: ``pct`` is -100 or less.
        """
        if pct <= -100:
            raise ValueError("a shock cannot take a price to zero or below")
        k = self._position(symbol)
        price = self._book.move_anchor(k, 1 + pct / 100)
        self._feed.refresh(k)
        return price

    def halt(self, symbol: str) -> None:
        """Halt trading in ``symbol``: no trades until :meth:`resume` (quotes go on).

        Stocks announce it with a ``LULD`` event carrying indicator 17, queued for the
        next batch. Halting a halted symbol does nothing.

        Raises:
            KeyError: the symbol is not in this universe.
        """
        k = self._position(symbol)
        if k in self._book.halted:
            return
        self._book.halted.add(k)
        if self.family is Market.STOCKS:
            self._emit_luld(k, LULD_HALT)

    def resume(self, symbol: str) -> None:
        """Resume trading in ``symbol`` (a ``LULD`` with indicator 18 for stocks).

        Raises:
            KeyError: the symbol is not in this universe.
        """
        k = self._position(symbol)
        if k not in self._book.halted:
            return
        self._book.halted.discard(k)
        if self.family is Market.STOCKS:
            self._emit_luld(k, LULD_RESUME)

    def set_volatility(self, symbol: str, factor: float) -> None:
        """Scale the size of ``symbol``'s price steps and band (1 is the default).

        Raises:
            KeyError: the symbol is not in this universe.
            ValueError: ``factor`` is not positive.
        """
        if factor <= 0:
            raise ValueError("volatility factor must be > 0")
        k = self._position(symbol)
        self._book.set_volatility(k, factor)
        self._feed.refresh(k)  # the band may have clamped the bid

    @property
    def halted(self) -> frozenset[str]:
        """The symbols halted now."""
        return frozenset(self._book.names[k] for k in self._book.halted)

    def price(self, symbol: str) -> float:
        """The current bid of ``symbol`` (where its random walk stands).

        Raises:
            KeyError: the symbol is not in this universe.
        """
        return self._book.bid_price(self._position(symbol))

    def anchor(self, symbol: str) -> float:
        """The level ``symbol`` wanders around (its reference price, moved by shocks).

        Raises:
            KeyError: the symbol is not in this universe.
        """
        return price_value(self._book.anchor[self._position(symbol)])
