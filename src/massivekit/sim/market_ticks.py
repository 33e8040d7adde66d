"""Tick events (trades, quotes, values) of each cluster: their rows and hot loops.

Randomness is drawn once, when a feed is built, into a *row table*: each row holds
one event's random choices (trade or quote, side, move of the price, size,
exchange, conditions) already rendered as wire fragments. The loop walks the rows
cyclically beside the schedule of instruments, so an event costs a few list
lookups and one ``bytes.join`` instead of a dozen random draws and number formats.
The row table (a prime length) and the schedule (a power of two) have coprime
periods, and prices are state, so the stream does not repeat.

Each instrument keeps its *heads*, the leading bytes of its next quote and trade up
to and including the prices (``{"ev":"Q","sym":"AAPL","z":3,"bp":190.12,"ap":190.13``),
rebuilt only when its quote moves (about one quote in four). JSON objects are
unordered, so keys are laid out to make that possible.

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
    "ContractsFeed",
    "CryptoFeed",
    "ForexFeed",
    "IndicesFeed",
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
    """The tick events of one cluster; subclasses own a row table, heads and a loop."""

    trade_ev: str | None = None
    quote_ev: str = ""
    trade_ratio = 0.0
    uses_sequence = True
    """Whether events carry the feed's sequence number (``q``, or a trade id from it)."""

    def __init__(self, book: Book, rng: random.Random) -> None:
        """Draw the row table from ``rng``; make prefixes and topics from ``book``."""
        self.book = book
        rows = [
            self._trade_row(rng) if rng.random() < self.trade_ratio else self._quote_row(rng)
            for _ in range(_ROWS)
        ]
        self.rows: Iterator[Row] = cycle(rows)
        self.trade_topics = book.topics(self.trade_ev) if self.trade_ev else []
        self.quote_topics = book.topics(self.quote_ev)
        self.quote_head: list[bytes] = [b""] * len(book)
        self.bid_head: list[bytes] = [b""] * len(book)  # trade head at the bid
        self.ask_head: list[bytes] = [b""] * len(book)  # trade head at the ask

    def _trade_row(self, rng: random.Random) -> Row:
        raise NotImplementedError(f"{type(self).__name__} has no trades")

    @abc.abstractmethod
    def _quote_row(self, rng: random.Random) -> Row:
        """The random choices of one quote (or value) event."""

    def _prefixes(self, quote: list[bytes], trade: list[bytes], between: bytes) -> None:
        """Keep the prefixes and build every head (subclass ``__init__`` calls this)."""
        self.quote_pre, self.trade_pre, self.between = quote, trade, between
        for k in range(len(self.book)):
            self.refresh(k)

    def refresh(self, k: int) -> None:
        """Rebuild the heads of ``k`` from the book (after a shock, say)."""
        text = self.book.text
        bid, ask = text[self.book.bid[k]], text[self.book.ask[k]]
        self.quote_head[k] = b"".join((self.quote_pre[k], bid, self.between, ask))
        if self.trade_pre:
            self.bid_head[k] = self.trade_pre[k] + bid
            self.ask_head[k] = self.trade_pre[k] + ask

    @abc.abstractmethod
    def time_frags(self, t: int) -> list[bytes]:
        """The time-dependent fragments of one batch stamped ``t`` (Unix ms)."""

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

        Along the way, keep the book's per-second range, volume and count for the
        aggregates. A halted instrument's trades are dropped.
        """


class StocksFeed(TickFeed):
    """SIP trades and NBBO quotes: ``T`` and ``Q``."""

    trade_ev = "T"
    quote_ev = "Q"
    trade_ratio = 0.38
    _EXCHANGES = ((4, 35), (12, 15), (11, 10), (10, 8), (19, 7), (8, 6), (21, 5), (15, 4),
                  (17, 2), (18, 2), (7, 2), (1, 1), (2, 1), (9, 1), (3, 1))  # fmt: skip
    _TRF_IDS = (201, 202, 203)  # FINRA TRF ids: trfi/trft travel only with exchange 4

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        z = [inst.tape or 3 for inst in book.instruments]
        self._prefixes(
            [
                b'{"ev":"Q","sym":%s,"z":%d,"bp":' % pair
                for pair in zip(book.quoted, z, strict=True)
            ],
            [b'{"ev":"T","sym":%s,"z":%d,"p":' % pair for pair in zip(book.quoted, z, strict=True)],
            b',"ap":',
        )

    def _trade_row(self, rng: random.Random) -> Row:
        size = _weighted(rng, ((100, 30), (200, 8), (300, 5), (500, 3), (1000, 1), (0, 35)))
        if size == 0:  # an odd lot: the commonest print since 2020
            size = rng.randint(1, 99)
        conds = [37] if size < 100 else []
        conds += _weighted(rng, (([], 60), ([14, 41], 20), ([41], 10), ([12], 5), ([14], 5)))
        x = _weighted(rng, self._EXCHANGES)
        c = b',"c":[%s]' % b",".join(b"%d" % c for c in sorted(conds)) if conds else b""
        frag = b',"s":%d%s,"x":%d,"t":' % (size, c, x)
        tv = rng.randint(1, len(self._TRF_IDS)) if x == 4 else 0
        tail = b',"i":"%d' % rng.randint(1, 99999)  # then the sequence: a unique trade id
        return (1, rng.random() < 0.5, frag, tv, tail, size + COUNT_ONE)

    def _quote_row(self, rng: random.Random) -> Row:
        bx, ax = (_weighted(rng, self._EXCHANGES[1:]) for _ in range(2))  # the TRF never quotes
        lots = ((1, 40), (2, 20), (3, 10), (5, 10), (10, 5))
        bs, as_ = (100 * _weighted(rng, lots) for _ in range(2))
        ind = b',"i":[604]' if rng.random() < 0.05 else b""
        frag = b',"bx":%d,"bs":%d,"ax":%d,"as":%d,"c":0%s,"t":' % (bx, bs, ax, as_, ind)
        return (0, frag, _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        trf = [b'%d,"trfi":%d,"trft":%d,"q":' % (t, i, t - 1) for i in self._TRF_IDS]
        return [b'%d,"q":' % t, *trf]

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
        qhead, bhead, ahead = self.quote_head, self.bid_head, self.ask_head
        qpre, tpre, ttop, qtop = (
            self.quote_pre,
            self.trade_pre,
            self.trade_topics,
            self.quote_topics,
        )
        tq = tfr[0]
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, frag, tv, tail, counted = row
                head = ahead[k] if side else bhead[k]
                data(join((head, frag, tfr[tv], qb, tail, qb, b'"}')))
                topics(ttop[k])
                ticks[k] += counted
                continue
            _, frag, move = row
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
                tb, ta = text[b], text[a]
                qhead[k] = join((qpre[k], tb, b',"ap":', ta))
                bhead[k] = tpre[k] + tb
                ahead[k] = tpre[k] + ta
            data(join((qhead[k], frag, tq, qb, b"}")))
            topics(qtop[k])


class ContractsFeed(TickFeed):
    """Options (OPRA) and futures trades and quotes: ``T`` and ``Q``.

    Options carry exchange and conditions; futures quotes carry the bid and ask
    times ``bt``/``at``, and futures trades only price, size, time and sequence.
    """

    trade_ev = "T"
    quote_ev = "Q"

    def __init__(self, book: Book, rng: random.Random, *, futures: bool) -> None:
        self.futures = futures
        self.trade_ratio = 0.3 if futures else 0.1  # OPRA quotes dwarf its trades
        self._exchanges = book.instruments[0].exchanges or (0,)
        self._conditions = book.instruments[0].conditions or (0,)
        super().__init__(book, rng)
        self._prefixes(
            book.prefixes(b'{"ev":"Q","sym":%s,"bp":'),
            book.prefixes(b'{"ev":"T","sym":%s,"p":'),
            b',"ap":',
        )

    def _size(self, rng: random.Random) -> int:
        return int(_weighted(rng, ((1, 40), (2, 15), (3, 8), (5, 10), (10, 10), (25, 4), (50, 2))))

    def _trade_row(self, rng: random.Random) -> Row:
        size = self._size(rng)
        if self.futures:
            frag = b',"s":%d,"t":' % size
        else:
            c, x = rng.choice(self._conditions), rng.choice(self._exchanges)
            frag = b',"s":%d,"c":[%d],"x":%d,"t":' % (size, c, x)
        return (1, rng.random() < 0.5, frag, size + COUNT_ONE)

    def _quote_row(self, rng: random.Random) -> Row:
        bs, as_ = self._size(rng) * 3, self._size(rng) * 3
        if self.futures:
            return (0, b',"bs":%d,"as":%d,"bt":' % (bs, as_), 1, _move(rng))
        bx, ax = rng.choice(self._exchanges), rng.choice(self._exchanges)
        frag = b',"bx":%d,"ax":%d,"bs":%d,"as":%d,"t":' % (bx, ax, bs, as_)
        return (0, frag, 0, _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        return [b'%d,"q":' % t, b'%d,"at":%d,"t":%d,"q":' % (t - 2, t - 1, t)]

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
        qhead, bhead, ahead = self.quote_head, self.bid_head, self.ask_head
        qpre, tpre, ttop, qtop = (
            self.quote_pre,
            self.trade_pre,
            self.trade_topics,
            self.quote_topics,
        )
        tq = tfr[0]
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, frag, counted = row
                head = ahead[k] if side else bhead[k]
                data(join((head, frag, tq, qb, b"}")))
                topics(ttop[k])
                ticks[k] += counted
                continue
            _, frag, tv, move = row
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
                qhead[k] = join((qpre[k], tb, b',"ap":', ta))
                bhead[k] = tpre[k] + tb
                ahead[k] = tpre[k] + ta
            data(join((qhead[k], frag, tfr[tv], qb, b"}")))
            topics(qtop[k])


class CryptoFeed(TickFeed):
    """Crypto trades and quotes: ``XT`` (``pair`` names the pair, ``p`` is the price), ``XQ``."""

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
        super().__init__(book, rng)
        # Per pair, the size of row choice m, scaled to the pair's typical print.
        self.sizes = [[inst.size * m for m in self._SIZES] for inst in book.instruments]
        self.trade_sizes = [[b',"s":' + float_text(s) for s in row] for row in self.sizes]
        self.quote_sizes = [
            [b',"bs":%s,"as":%s' % (float_text(s * 3), float_text(s * 2)) for s in row]
            for row in self.sizes
        ]
        self._prefixes(
            book.prefixes(b'{"ev":"XQ","pair":%s,"bp":'),
            book.prefixes(b'{"ev":"XT","pair":%s,"p":'),
            b',"ap":',
        )

    def _trade_row(self, rng: random.Random) -> Row:
        side = rng.random() < 0.5
        x = rng.choice(self.book.instruments[0].exchanges)
        frag = b',"c":[%d],"x":%d,"i":' % (2 if side else 1, x)  # c: 1 sell, 2 buy
        return (1, side, rng.randrange(len(self._SIZES)), frag, rng.randrange(len(self._LATENCIES)))

    def _quote_row(self, rng: random.Random) -> Row:
        x = rng.choice(self.book.instruments[0].exchanges)
        m, tv = rng.randrange(len(self._SIZES)), rng.randrange(len(self._LATENCIES))
        return (0, m, b',"x":%d,"t":' % x, tv, _move(rng))

    def time_frags(self, t: int) -> list[bytes]:
        return [b'%d,"r":%d}' % (t, t + d) for d in self._LATENCIES]

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
        qhead, bhead, ahead = self.quote_head, self.bid_head, self.ask_head
        qpre, tpre, ttop, qtop = (
            self.quote_pre,
            self.trade_pre,
            self.trade_topics,
            self.quote_topics,
        )
        tsz, qsz, sizes, volume = self.trade_sizes, self.quote_sizes, self.sizes, bk.sec_volume
        tr = [b',"t":' + f for f in tfr]
        for k, row, qb in zip(picks, self.rows, qbs, strict=False):  # rows, qbs: as long as picks
            if row[0]:
                if halted and k in halted:
                    continue
                _, side, m, frag, tv = row
                head = ahead[k] if side else bhead[k]
                data(join((head, tsz[k][m], frag, qb, tr[tv])))
                topics(ttop[k])
                ticks[k] += COUNT_ONE
                volume[k] += sizes[k][m]
                continue
            _, m, frag, tv, move = row
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
                qhead[k] = join((qpre[k], tb, b',"ap":', ta))
                bhead[k] = tpre[k] + tb
                ahead[k] = tpre[k] + ta
            data(join((qhead[k], qsz[k][m], frag, tfr[tv])))
            topics(qtop[k])


class ForexFeed(TickFeed):
    """Forex quotes ``C``: the pair travels in ``p``, ask ``a`` and bid ``b``; no sequence."""

    quote_ev = "C"
    uses_sequence = False

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        # The head is ask first: {"ev":"C","p":"EUR/USD","x":48,"a":1.08002,"b":1.07999
        self._prefixes(
            [
                b'{"ev":"C","p":%s,"x":%d,"a":' % (q, (inst.exchanges or (48,))[0])
                for q, inst in zip(book.quoted, book.instruments, strict=True)
            ],
            [],
            b',"b":',
        )

    def refresh(self, k: int) -> None:
        text = self.book.text
        ask, bid = text[self.book.ask[k]], text[self.book.bid[k]]
        self.quote_head[k] = b"".join((self.quote_pre[k], ask, self.between, bid))

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
    """Index values ``V``: the index travels in ``T``, its level in ``val``."""

    quote_ev = "V"
    uses_sequence = False

    def __init__(self, book: Book, rng: random.Random) -> None:
        super().__init__(book, rng)
        self._prefixes(book.prefixes(b'{"ev":"V","T":%s,"val":'), [], b"")

    def refresh(self, k: int) -> None:
        pass  # values are written straight from the price, nothing is kept

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
        bid, step_, lo, hi, text = bk.bid, bk.step, bk.lo, bk.hi, bk.text
        low, high, ticks = bk.sec_low, bk.sec_high, bk.sec_ticks
        qpre, qtop, end = self.quote_pre, self.quote_topics, tfr[0]
        for k, step in zip(picks, self.rows, strict=False):  # rows cycle forever
            v = bid[k]
            if step:
                v += step * step_[k]
                if v < lo[k] or v > hi[k]:
                    v -= 2 * step * step_[k]
                bid[k] = v
                if v < low[k]:
                    low[k] = v
                if v > high[k]:
                    high[k] = v
            data(qpre[k] + text[v] + end)
            topics(qtop[k])
            ticks[k] += COUNT_ONE
