"""Tick events (trades, quotes, values) of each cluster: their rows and hot loops.

Randomness is drawn once, when a feed is built, into a *row table*: each row holds
one event's random choices (trade or quote, side, move of the price, size,
exchange, conditions) already rendered as wire fragments. The loop walks the rows
cyclically beside the schedule of instruments, so an event costs a few list
lookups and one ``bytes.join`` instead of a dozen random draws and number formats.
The row table (a prime length) and the schedule (a power of two) have coprime
periods, and prices are state, so the stream does not repeat.

Keys go in Massive's wire order (the order of the spec's example of each event),
so an event interleaves three kinds of text: the instrument's (its symbol, its
prices, its tape), the row's (sizes, venues, conditions) and the batch's (the
time, the sequence number). Each kind is rendered ahead where it changes:

* per instrument, the fragments between the row's keys, the prices included
  (``{"ev":"Q","sym":"AAPL","bx":`` ... ``190.12`` ... ``,"z":3}``), rebuilt only
  when its quote moves (about one quote in four);
* per row, the text between the instrument's fragments (``11,"bp":``);
* per batch (:meth:`TickFeed.time_frags`), a small table of the fragments that
  carry the time, indexed by the rows (``,"as":200,"c":0,"t":1700000000000,"q":``),
  and the format of the sequence number, which may close the object.

The loops are written out per cluster, not shared through helpers: a function call
per event would cost more than the rest of the event.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import cycle
from typing import Any

from massivekit.sim.market_book import COUNT_ONE, Book, float_text

__all__ = [
    "CryptoFeed",
    "ForexFeed",
    "FuturesFeed",
    "IndicesFeed",
    "OptionsFeed",
    "StocksFeed",
    "TickFeed",
]

Row = Any  # a tuple whose shape is private to each feed
Append = Callable[[Any], None]

_ROWS = 4093  # prime, so the row cycle never lines up with the schedule's 2**n


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


def _move(rng: random.Random) -> tuple[int, int] | None:
    """How one quote changes the book: ``None`` (it repeats) or ``(step, extra ticks)``.

    The bid steps on one quote in eight and the spread is redrawn on one in eight;
    the rest repeat the standing quote with new sizes and venues, as most NBBO
    updates do.
    """
    step = _weighted(rng, ((0, 14), (1, 1), (-1, 1)))
    if not step and rng.random() >= 0.125:
        return None
    return step, _weighted(rng, ((0, 70), (1, 20), (2, 10)))


class TickFeed(abc.ABC):
    """The tick events of one cluster; subclasses own a row table, caches and a loop."""

    trade_ev: str | None = None
    quote_ev: str = ""
    trade_ratio = 0.0
    uses_sequence = True
    """Whether events carry the feed's sequence number (``q``, or a trade id from it)."""

    def __init__(self, book: Book, rng: random.Random) -> None:
        """Draw the row table from ``rng``; make topics from ``book``.

        A subclass then renders its per-instrument fragments and calls
        :meth:`refresh_all`.
        """
        self.book = book
        rows = [
            self._trade_row(rng) if rng.random() < self.trade_ratio else self._quote_row(rng)
            for _ in range(_ROWS)
        ]
        self.rows: Iterator[Row] = cycle(rows)
        self.trade_topics = book.topics(self.trade_ev) if self.trade_ev else []
        self.quote_topics = book.topics(self.quote_ev)

    def _trade_row(self, rng: random.Random) -> Row:
        raise NotImplementedError(f"{type(self).__name__} has no trades")

    @abc.abstractmethod
    def _quote_row(self, rng: random.Random) -> Row:
        """The random choices of one quote (or value) event."""

    def refresh_all(self) -> None:
        """Render the price fragments of every instrument."""
        for k in range(len(self.book)):
            self.refresh(k)

    @abc.abstractmethod
    def refresh(self, k: int) -> None:
        """Rebuild the price fragments of ``k`` from the book (after a shock, say)."""

    @abc.abstractmethod
    def time_frags(self, t: int) -> list[bytes]:
        """The time-dependent fragments of one batch stamped ``t`` (Unix ms)."""

    def sequence_format(self, t: int) -> bytes:
        """The ``%d`` format of a sequence number in a batch stamped ``t`` (Unix ms).

        Where the sequence number ends the event, the format carries what goes
        around it (the time before, the closing brace after): one piece less per
        event to join.
        """
        return b"%d"

    @abc.abstractmethod
    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        """Append one event per pick: its topic to ``topics``, its JSON to ``data``.

        ``qbs`` are the sequence numbers rendered by :meth:`sequence_format`, ``tfr``
        the batch's :meth:`time_frags`. Along the way, keep the book's per-second
        range, volume and count for the aggregates. A halted instrument's trades
        are dropped.
        """


class StocksFeed(TickFeed):
    """SIP trades and NBBO quotes: ``T`` and ``Q``.

    Wire order (the spec's examples; ``trfi``/``trft`` last, as its schema lists them)::

        {"ev":"T","sym":S,"x":..,"i":"..","z":..,"p":..,"s":..,"c":[..],"t":..,"q":..}
        {"ev":"Q","sym":S,"bx":..,"bp":..,"bs":..,"ax":..,"ap":..,"as":..,"c":0,"i":[..],
         "t":..,"q":..,"z":..}
    """

    trade_ev = "T"
    quote_ev = "Q"
    trade_ratio = 0.38
    _EXCHANGES = ((4, 35), (12, 15), (11, 10), (10, 8), (19, 7), (8, 6), (21, 5), (15, 4),
                  (17, 2), (18, 2), (7, 2), (1, 1), (2, 1), (9, 1), (3, 1))  # fmt: skip
    _TRF_IDS = (201, 202, 203)  # FINRA TRF ids: trfi/trft travel only with exchange 4
    _LOTS = ((1, 40), (2, 20), (3, 10), (5, 10), (10, 5))
    _LOT_INDEX = {lot: i for i, (lot, _) in enumerate(_LOTS)}
    # The batch's fragments: [0] the time before "q"; [1 + trf] the end of a trade
    # (trf 0: none, else the TRF id's index + 1); [_QUOTE_TAILS + 2 * lot + ind] a
    # quote's "as" to "q" (ind 1: it carries the indicator [604]).
    _TRADE_ENDS = 1
    _QUOTE_TAILS = _TRADE_ENDS + 1 + len(_TRF_IDS)

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        n = len(book)
        tapes = [inst.tape or 3 for inst in book.instruments]
        self.quote_pre = book.prefixes(b'{"ev":"Q","sym":%s,"bx":')
        self.quote_end = [b',"z":%d}' % z for z in tapes]
        self.trade_pre = book.prefixes(b'{"ev":"T","sym":%s,"x":')
        self.trade_mid = [b'","z":%d,"p":' % z for z in tapes]  # closes the trade id
        self.bid_text: list[bytes] = [b""] * n
        self.ask_text: list[bytes] = [b""] * n
        self.bid_head: list[bytes] = [b""] * n  # a trade at the bid, from its trade id on
        self.ask_head: list[bytes] = [b""] * n
        self.refresh_all()

    def refresh(self, k: int) -> None:
        text, mid = self.book.text, self.trade_mid[k]
        bid, ask = text[self.book.bid[k]], text[self.book.ask[k]]
        self.bid_text[k], self.ask_text[k] = bid, ask
        self.bid_head[k], self.ask_head[k] = mid + bid, mid + ask

    def _trade_row(self, rng: random.Random) -> Row:
        size = _weighted(rng, ((100, 30), (200, 8), (300, 5), (500, 3), (1000, 1), (0, 35)))
        if size == 0:  # an odd lot: the commonest print since 2020
            size = rng.randint(1, 99)
        conds = [37] if size < 100 else []
        conds += _weighted(rng, (([], 60), ([14, 41], 20), ([41], 10), ([12], 5), ([14], 5)))
        x = _weighted(rng, self._EXCHANGES)
        c = b',"c":[%s]' % b",".join(b"%d" % c for c in sorted(conds)) if conds else b""
        tv = rng.randint(1, len(self._TRF_IDS)) if x == 4 else 0
        # "x", then the trade id: a random prefix, then the sequence (a unique id)
        head = b'%d,"i":"%d' % (x, rng.randint(1, 99999))
        body = b',"s":%d%s,"t":' % (size, c)
        return (1, rng.random() < 0.5, head, body, self._TRADE_ENDS + tv, size + COUNT_ONE)

    def _quote_row(self, rng: random.Random) -> Row:
        bx, ax = (_weighted(rng, self._EXCHANGES[1:]) for _ in range(2))  # the TRF never quotes
        bs, as_ = (_weighted(rng, self._LOTS) for _ in range(2))
        ind = int(rng.random() < 0.05)
        tail = self._QUOTE_TAILS + 2 * self._LOT_INDEX[as_] + ind
        return (0, b'%d,"bp":' % bx, b',"bs":%d,"ax":%d,"ap":' % (100 * bs, ax), tail, _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        trf = [b',"trfi":%d,"trft":%d}' % (i, t - 1) for i in self._TRF_IDS]
        tails = [
            b',"as":%d,"c":0%s,"t":%d,"q":' % (100 * lot, ind, t)
            for lot, _ in self._LOTS
            for ind in (b"", b',"i":[604]')
        ]
        return [b'%d,"q":' % t, b"}", *trf, *tails]

    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        bk = self.book
        bid, ask, spread, extra, tick = bk.bid, bk.ask, bk.spread, bk.extra, bk.tick
        step_, lo, hi, halted, text, join = bk.step, bk.lo, bk.hi, bk.halted, bk.text, b"".join
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        btext, atext, bhead, ahead = self.bid_text, self.ask_text, self.bid_head, self.ask_head
        qpre, qend, tpre, tmid = self.quote_pre, self.quote_end, self.trade_pre, self.trade_mid
        ttop, qtop = self.trade_topics, self.quote_topics
        tq = tfr[0]
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, head, body, end, counted = row
                price = ahead[k] if side else bhead[k]
                data(join((tpre[k], head, qb, price, body, tq, qb, tfr[end])))
                topics(ttop[k])
                ticks[k] += counted
                continue
            _, bx, mid, tail, move = row
            if move is not None:
                step, wide = move
                b = bid[k]
                if step:
                    b += step * step_[k]
                    if b < lo[k] or b > hi[k]:  # reflect at the band's edge
                        b -= 2 * step * step_[k]
                    bid[k] = b
                extra[k] = wide
                a = ask[k] = b + spread[k] + wide * tick[k]
                if b < low[k]:
                    low[k] = b
                if a > high[k]:
                    high[k] = a
                tb, ta = btext[k], atext[k] = text[b], text[a]
                bhead[k] = tmid[k] + tb
                ahead[k] = tmid[k] + ta
            data(join((qpre[k], bx, btext[k], mid, atext[k], tfr[tail], qb, qend[k])))
            topics(qtop[k])


def _contract_size(rng: random.Random) -> int:
    return int(_weighted(rng, ((1, 40), (2, 15), (3, 8), (5, 10), (10, 10), (25, 4), (50, 2))))


class OptionsFeed(TickFeed):
    """OPRA trades and quotes: ``T`` and ``Q``, with exchange and conditions.

    Wire order (the spec's examples)::

        {"ev":"T","sym":S,"x":..,"p":..,"s":..,"c":[..],"t":..,"q":..}
        {"ev":"Q","sym":S,"bx":..,"ax":..,"bp":..,"ap":..,"bs":..,"as":..,"t":..,"q":..}
    """

    trade_ev = "T"
    quote_ev = "Q"
    trade_ratio = 0.1  # OPRA quotes dwarf its trades

    def __init__(self, book: Book, rng: random.Random) -> None:
        self._exchanges = book.instruments[0].exchanges or (0,)
        self._conditions = book.instruments[0].conditions or (0,)
        super().__init__(book, rng)
        n = len(book)
        self.quote_pre = book.prefixes(b'{"ev":"Q","sym":%s,"bx":')
        self.trade_pre = book.prefixes(b'{"ev":"T","sym":%s,"x":')
        self.bid_text: list[bytes] = [b""] * n
        self.ask_text: list[bytes] = [b""] * n
        self.quote_mid: list[bytes] = [b""] * n  # bid to ask: 1.25,"ap":1.3
        self.refresh_all()

    def refresh(self, k: int) -> None:
        text = self.book.text
        bid, ask = text[self.book.bid[k]], text[self.book.ask[k]]
        self.bid_text[k], self.ask_text[k] = bid, ask
        self.quote_mid[k] = b"".join((bid, b',"ap":', ask))

    def _trade_row(self, rng: random.Random) -> Row:
        size = _contract_size(rng)
        c, x = rng.choice(self._conditions), rng.choice(self._exchanges)
        body = b',"s":%d,"c":[%d],"t":' % (size, c)
        return (1, rng.random() < 0.5, b'%d,"p":' % x, body, size + COUNT_ONE)

    def _quote_row(self, rng: random.Random) -> Row:
        bs, as_ = _contract_size(rng) * 3, _contract_size(rng) * 3
        bx, ax = rng.choice(self._exchanges), rng.choice(self._exchanges)
        head = b'%d,"ax":%d,"bp":' % (bx, ax)
        return (0, head, b',"bs":%d,"as":%d,"t":' % (bs, as_), _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        return []

    def sequence_format(self, t: int) -> bytes:
        return b'%d,"q":' % t + b"%d}"

    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        bk = self.book
        bid, ask, spread, extra, tick = bk.bid, bk.ask, bk.spread, bk.extra, bk.tick
        step_, lo, hi, halted, text, join = bk.step, bk.lo, bk.hi, bk.halted, bk.text, b"".join
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        btext, atext, qmid = self.bid_text, self.ask_text, self.quote_mid
        qpre, tpre, ttop, qtop = (
            self.quote_pre,
            self.trade_pre,
            self.trade_topics,
            self.quote_topics,
        )
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, head, body, counted = row
                data(join((tpre[k], head, atext[k] if side else btext[k], body, qb)))
                topics(ttop[k])
                ticks[k] += counted
                continue
            _, head, body, move = row
            if move is not None:
                step, wide = move
                b = bid[k]
                if step:
                    b += step * step_[k]
                    if b < lo[k] or b > hi[k]:
                        b -= 2 * step * step_[k]
                    bid[k] = b
                extra[k] = wide
                a = ask[k] = b + spread[k] + wide * tick[k]
                if b < low[k]:
                    low[k] = b
                if a > high[k]:
                    high[k] = a
                tb, ta = btext[k], atext[k] = text[b], text[a]
                qmid[k] = join((tb, b',"ap":', ta))
            data(join((qpre[k], head, qmid[k], body, qb)))
            topics(qtop[k])


class FuturesFeed(TickFeed):
    """Futures trades and quotes: ``T`` and ``Q``; quotes carry bid and ask times.

    Futures are not in the pinned spec; the order is that of Massive's futures
    documentation (and of :mod:`massivekit.models.futures`), ``q`` after ``t``::

        {"ev":"T","sym":S,"p":..,"s":..,"t":..,"q":..}
        {"ev":"Q","sym":S,"bp":..,"bs":..,"bt":..,"ap":..,"as":..,"at":..,"t":..,"q":..}
    """

    trade_ev = "T"
    quote_ev = "Q"
    trade_ratio = 0.3
    _SIZES = (1, 2, 3, 5, 10, 25, 50)  # the values _contract_size draws

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        n = len(book)
        self.quote_pre = book.prefixes(b'{"ev":"Q","sym":%s,"bp":')
        self.trade_pre = book.prefixes(b'{"ev":"T","sym":%s,"p":')
        self.quote_head: list[bytes] = [b""] * n  # up to the bid
        self.ask_text: list[bytes] = [b""] * n
        self.bid_head: list[bytes] = [b""] * n  # a trade at the bid, up to the price
        self.ask_head: list[bytes] = [b""] * n
        self.refresh_all()

    def refresh(self, k: int) -> None:
        text = self.book.text
        bid, ask = text[self.book.bid[k]], text[self.book.ask[k]]
        self.quote_head[k], self.ask_text[k] = self.quote_pre[k] + bid, ask
        self.bid_head[k], self.ask_head[k] = self.trade_pre[k] + bid, self.trade_pre[k] + ask

    def _trade_row(self, rng: random.Random) -> Row:
        size = _contract_size(rng)
        return (1, rng.random() < 0.5, b',"s":%d,"t":' % size, size + COUNT_ONE)

    def _quote_row(self, rng: random.Random) -> Row:
        # The sizes index the batch's fragments: [i] "bs" to "ap", [7 + i] "as" to "t".
        bs, as_ = self._SIZES.index(_contract_size(rng)), self._SIZES.index(_contract_size(rng))
        return (0, bs, len(self._SIZES) + as_, _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        bids = [b',"bs":%d,"bt":%d,"ap":' % (3 * s, t - 2) for s in self._SIZES]
        asks = [b',"as":%d,"at":%d,"t":' % (3 * s, t - 1) for s in self._SIZES]
        return bids + asks

    def sequence_format(self, t: int) -> bytes:
        return b'%d,"q":' % t + b"%d}"

    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        bk = self.book
        bid, ask, spread, extra, tick = bk.bid, bk.ask, bk.spread, bk.extra, bk.tick
        step_, lo, hi, halted, text, join = bk.step, bk.lo, bk.hi, bk.halted, bk.text, b"".join
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        qhead, atext, bhead, ahead = self.quote_head, self.ask_text, self.bid_head, self.ask_head
        qpre, tpre, ttop, qtop = (
            self.quote_pre,
            self.trade_pre,
            self.trade_topics,
            self.quote_topics,
        )
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, body, counted = row
                data(join((ahead[k] if side else bhead[k], body, qb)))
                topics(ttop[k])
                ticks[k] += counted
                continue
            _, bs, as_, move = row
            if move is not None:
                step, wide = move
                b = bid[k]
                if step:
                    b += step * step_[k]
                    if b < lo[k] or b > hi[k]:
                        b -= 2 * step * step_[k]
                    bid[k] = b
                extra[k] = wide
                a = ask[k] = b + spread[k] + wide * tick[k]
                if b < low[k]:
                    low[k] = b
                if a > high[k]:
                    high[k] = a
                tb, ta = text[b], text[a]
                qhead[k] = qpre[k] + tb
                atext[k] = ta
                bhead[k] = tpre[k] + tb
                ahead[k] = tpre[k] + ta
            data(join((qhead[k], tfr[bs], atext[k], tfr[as_], qb)))
            topics(qtop[k])


class CryptoFeed(TickFeed):
    """Crypto trades and quotes: ``XT`` (``pair`` names the pair, ``p`` is the price), ``XQ``.

    Wire order (the spec's examples)::

        {"ev":"XT","pair":P,"p":..,"t":..,"s":..,"c":[..],"i":..,"x":..,"r":..}
        {"ev":"XQ","pair":P,"bp":..,"bs":..,"ap":..,"as":..,"t":..,"x":..,"r":..}
    """

    trade_ev = "XT"
    quote_ev = "XQ"
    trade_ratio = 0.45
    _SIZES = (
        0.01,
        0.05,
        0.1,
        0.25,
        0.5,
        0.8,
        1.0,
        1.3,
        2.0,
        3.7,
        5.0,
        10.0,
        0.003,
        0.02,
        0.4,
        25.0,
    )
    _LATENCIES = (3, 8, 15, 40)  # ms from the venue's ``t`` to Massive's receipt ``r``

    def __init__(self, book: Book, rng: random.Random) -> None:
        self._exchanges: tuple[int, ...] = book.instruments[0].exchanges
        super().__init__(book, rng)
        n = len(book)
        # Per pair, the size of row choice m, scaled to the pair's typical print.
        self.sizes = [[inst.size * m for m in self._SIZES] for inst in book.instruments]
        # A trade's size and side, up to its id: [m] a sell (c 1), [16 + m] a buy (c 2).
        self.trade_sizes = [
            [b',"s":%s,"c":[%d],"i":' % (float_text(s), c) for c in (1, 2) for s in row]
            for row in self.sizes
        ]
        self.bid_sizes = [[b',"bs":' + float_text(s * 3) for s in row] for row in self.sizes]
        self.ask_sizes = [[b',"as":' + float_text(s * 2) for s in row] for row in self.sizes]
        self.quote_pre = book.prefixes(b'{"ev":"XQ","pair":%s,"bp":')
        self.trade_pre = book.prefixes(b'{"ev":"XT","pair":%s,"p":')
        self.quote_head: list[bytes] = [b""] * n  # up to the bid
        self.quote_ask: list[bytes] = [b""] * n  # ,"ap":ASK
        self.bid_head: list[bytes] = [b""] * n  # a trade at the bid (a sell), up to the price
        self.ask_head: list[bytes] = [b""] * n
        self.refresh_all()

    def refresh(self, k: int) -> None:
        text = self.book.text
        bid, ask = text[self.book.bid[k]], text[self.book.ask[k]]
        self.quote_head[k], self.quote_ask[k] = self.quote_pre[k] + bid, b',"ap":' + ask
        self.bid_head[k], self.ask_head[k] = self.trade_pre[k] + bid, self.trade_pre[k] + ask

    def _venue(self, x: int, latency: int) -> int:
        """The index of ``,"x":X,"r":R}`` in the batch's fragments (a trade's end).

        A quote's end, ``,"t":T,"x":X,"r":R}``, is as many places further as there are
        venues (see :meth:`time_frags`).
        """
        return 1 + x * len(self._LATENCIES) + latency

    def _trade_row(self, rng: random.Random) -> Row:
        side = rng.random() < 0.5  # True: a buy at the ask (c 2), else a sell (c 1)
        x = self._exchanges.index(rng.choice(self._exchanges))
        m = rng.randrange(len(self._SIZES))
        venue = self._venue(x, rng.randrange(len(self._LATENCIES)))
        return (1, side, m, m + len(self._SIZES) * side, venue)

    def _quote_row(self, rng: random.Random) -> Row:
        x = self._exchanges.index(rng.choice(self._exchanges))
        m, latency = rng.randrange(len(self._SIZES)), rng.randrange(len(self._LATENCIES))
        venues = len(self._exchanges) * len(self._LATENCIES)
        return (0, m, self._venue(x, latency) + venues, _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        stamp = b',"t":%d' % t
        venues = [b',"x":%d,"r":%d}' % (x, t + d) for x in self._exchanges for d in self._LATENCIES]
        return [stamp, *venues, *(stamp + v for v in venues)]

    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        bk = self.book
        bid, ask, spread, extra, tick = bk.bid, bk.ask, bk.spread, bk.extra, bk.tick
        step_, lo, hi, halted, text, join = bk.step, bk.lo, bk.hi, bk.halted, bk.text, b"".join
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        qhead, qask, bhead, ahead = self.quote_head, self.quote_ask, self.bid_head, self.ask_head
        qpre, tpre, ttop, qtop = (
            self.quote_pre,
            self.trade_pre,
            self.trade_topics,
            self.quote_topics,
        )
        tsz, bsz, asz = self.trade_sizes, self.bid_sizes, self.ask_sizes
        sizes, volume = self.sizes, bk.sec_volume
        stamp = tfr[0]
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, m, sm, venue = row
                data(join((ahead[k] if side else bhead[k], stamp, tsz[k][sm], qb, tfr[venue])))
                topics(ttop[k])
                ticks[k] += COUNT_ONE
                volume[k] += sizes[k][m]
                continue
            _, m, venue, move = row
            if move is not None:
                step, wide = move
                b = bid[k]
                if step:
                    b += step * step_[k]
                    if b < lo[k] or b > hi[k]:
                        b -= 2 * step * step_[k]
                    bid[k] = b
                extra[k] = wide
                a = ask[k] = b + spread[k] + wide * tick[k]
                if b < low[k]:
                    low[k] = b
                if a > high[k]:
                    high[k] = a
                tb, ta = text[b], text[a]
                qhead[k] = qpre[k] + tb
                qask[k] = b',"ap":' + ta
                bhead[k] = tpre[k] + tb
                ahead[k] = tpre[k] + ta
            data(join((qhead[k], bsz[k][m], qask[k], asz[k][m], tfr[venue])))
            topics(qtop[k])


class ForexFeed(TickFeed):
    """Forex quotes ``C``: the pair travels in ``p``, ask ``a`` and bid ``b``; no sequence.

    Wire order (the spec's example): ``{"ev":"C","p":P,"x":..,"a":..,"b":..,"t":..}``.
    """

    quote_ev = "C"
    uses_sequence = False

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        # The head is all but the time: {"ev":"C","p":"EUR/USD","x":48,"a":1.08002,"b":1.07999
        self.quote_pre = [
            b'{"ev":"C","p":%s,"x":%d,"a":' % (q, (inst.exchanges or (48,))[0])
            for q, inst in zip(book.quoted, book.instruments, strict=True)
        ]
        self.quote_head: list[bytes] = [b""] * len(book)
        self.refresh_all()

    def refresh(self, k: int) -> None:
        text = self.book.text
        ask, bid = text[self.book.ask[k]], text[self.book.bid[k]]
        self.quote_head[k] = b"".join((self.quote_pre[k], ask, b',"b":', bid))

    def _quote_row(self, rng: random.Random) -> Row:
        # Forex quotes move more often than equity NBBOs: redraw until most rows move.
        return _move(rng) or _move(rng)

    def time_frags(self, t: int) -> list[bytes]:
        return [b',"t":%d}' % t]

    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        bk = self.book
        bid, ask, spread, extra, tick = bk.bid, bk.ask, bk.spread, bk.extra, bk.tick
        step_, lo, hi, text, join = bk.step, bk.lo, bk.hi, bk.text, b"".join
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        qhead, qpre, qtop, end = self.quote_head, self.quote_pre, self.quote_topics, tfr[0]
        for k, move in zip(picks, self.rows, strict=False):  # rows cycle forever
            if move is not None:
                step, wide = move
                b = bid[k]
                if step:
                    b += step * step_[k]
                    if b < lo[k] or b > hi[k]:
                        b -= 2 * step * step_[k]
                    bid[k] = b
                extra[k] = wide
                a = ask[k] = b + spread[k] + wide * tick[k]
                if b < low[k]:  # forex bars follow the bid
                    low[k] = b
                if b > high[k]:
                    high[k] = b
                qhead[k] = join((qpre[k], text[a], b',"b":', text[b]))
            data(qhead[k] + end)
            topics(qtop[k])
            ticks[k] += COUNT_ONE  # a forex bar's volume is its number of quotes


class IndicesFeed(TickFeed):
    """Index values ``V``: the index travels in ``T``, its level in ``val``.

    Wire order (the spec's example): ``{"ev":"V","val":..,"T":"I:SPX","t":..}``.
    """

    quote_ev = "V"
    uses_sequence = False
    _PRE = b'{"ev":"V","val":'

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        self.name_frags = book.prefixes(b',"T":%s')
        self.value_head: list[bytes] = [b""] * len(book)  # all but the time
        self.refresh_all()

    def refresh(self, k: int) -> None:
        text = self.book.text[self.book.bid[k]]
        self.value_head[k] = b"".join((self._PRE, text, self.name_frags[k]))

    def _quote_row(self, rng: random.Random) -> Row:
        return _weighted(rng, ((0, 2), (1, 1), (-1, 1)))  # a value moves on half its ticks

    def time_frags(self, t: int) -> list[bytes]:
        return [b',"t":%d}' % t]

    def run(
        self,
        picks: Iterable[int],
        qbs: Iterable[bytes],
        tfr: list[bytes],
        topics: Append,
        data: Append,
    ) -> None:
        bk = self.book
        bid, step_, lo, hi, text, join = bk.bid, bk.step, bk.lo, bk.hi, bk.text, b"".join
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        head, names, qtop = self.value_head, self.name_frags, self.quote_topics
        pre, end = self._PRE, tfr[0]
        for k, step in zip(picks, self.rows, strict=False):  # rows cycle forever
            if step:
                v = bid[k] + step * step_[k]
                if v < lo[k] or v > hi[k]:
                    v -= 2 * step * step_[k]
                bid[k] = v
                if v < low[k]:
                    low[k] = v
                if v > high[k]:
                    high[k] = v
                head[k] = join((pre, text[v], names[k]))
            data(head[k] + end)
            topics(qtop[k])
            ticks[k] += COUNT_ONE
