"""Aggregates and the other events a simulator emits at second boundaries.

The feeds keep, per instrument, the current second's quote range (every trade of
the second printed inside it, at the bid or the ask), its exact volume and its
trade count (:attr:`Book.sec_ticks`). At the boundary these become the ``A``/
``CAS``/``XAS`` bars of the instruments that ticked, which fold into the minute's
``AM``/``CA``/``XA`` bars. As on the real feed, an instrument that did not trade
gets no bar. Keeping a range instead of logging every print costs the trade path
one addition, where a log cost more than the trade's encoding.

A bar is a list ``[open, high, low, close, volume, price-volume, count]`` with the
prices as price keys; price-volume sums key*size, which :func:`_vwap` unpicks. The
volume-weighted price is estimated as the bar's typical price, ``(h + l + c) / 3``.

Keys are in Massive's wire order (the spec's examples; futures bars as their
documentation has them: ``v``, ``dv``, OHLC, ``n``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from massivekit.config import Market
from massivekit.sim.market_book import COUNT_ONE, PRICE_SCALE, Book, float_text, number_text

__all__ = ["Aggregator", "Emit", "luld_event", "noi_event", "xl2_event"]

Emit = Callable[[str, bytes], None]
"""Where boundary events go: ``emit(topic, data)``."""

Bar = list[float]

# Second and minute event kinds, and the key naming the instrument, per family.
_KINDS: dict[Market, tuple[str, str, bytes]] = {
    Market.STOCKS: ("A", "AM", b"sym"),
    Market.OPTIONS: ("A", "AM", b"sym"),
    Market.INDICES: ("A", "AM", b"sym"),
    Market.FUTURES: ("A", "AM", b"sym"),
    Market.FOREX: ("CAS", "CA", b"pair"),
    Market.CRYPTO: ("XAS", "XA", b"pair"),
}
_VOLUME_MASK = COUNT_ONE - 1

LULD_HALT = 17  # LULD indicators: 17 trading halt, 18 resumption (Nasdaq-listed)
LULD_RESUME = 18
LULD_BAND = 21  # the indicator of the documented band-update example


def _merge(into: Bar, bar: Bar) -> None:
    if bar[1] > into[1]:
        into[1] = bar[1]
    if bar[2] < into[2]:
        into[2] = bar[2]
    into[3] = bar[3]
    into[4] += bar[4]
    into[5] += bar[5]
    into[6] += bar[6]


def _vwap(pv: float, volume: float, decimals: int) -> float:
    """The volume-weighted price of keys summed as key*size (keys are units*17+decimals)."""
    return (pv - decimals * volume) / (PRICE_SCALE * volume) / 10.0**decimals


def _volume_text(volume: float) -> bytes:
    return b"%d" % volume if isinstance(volume, int) else float_text(volume)


class Aggregator:
    """Second and minute bars of one cluster, with the day's running totals."""

    def __init__(self, book: Book, family: Market) -> None:
        """Prepare prefixes and topics of ``family``'s two aggregate kinds."""
        self.book = book
        self.family = family
        second_ev, minute_ev, key = _KINDS[family]
        self.second_topics = book.topics(second_ev)
        self.minute_topics = book.topics(minute_ev)
        self.second_pre = book.prefixes(b'{"ev":"%s","%s":%%s,' % (second_ev.encode(), key))
        self.minute_pre = book.prefixes(b'{"ev":"%s","%s":%%s,' % (minute_ev.encode(), key))
        n = len(book)
        book.start_second(quoted=family is not Market.INDICES)
        self.minute: dict[int, Bar] = {}
        self.day_volume: list[float] = [0] * n
        self.day_pv: list[float] = [0] * n
        self.day_open: list[int] = [0] * n
        self._body = {
            Market.STOCKS: self._body_equity,
            Market.OPTIONS: self._body_equity,
            Market.INDICES: self._body_index,
            Market.FUTURES: self._body_futures,
            Market.FOREX: self._body_forex,
            Market.CRYPTO: self._body_crypto,
        }[family]

    def _volume(self, k: int, ticks: int) -> float:
        if self.family is Market.CRYPTO:
            return self.book.sec_volume[k]
        if self.family is Market.FOREX:
            return ticks >> 32  # forex volume counts quotes
        return ticks & _VOLUME_MASK

    def second_bar(self, k: int) -> Bar:
        """The bar of ``k`` over the current second (``k`` must have ticked)."""
        bk = self.book
        ticks = bk.sec_ticks[k]
        o, c = bk.sec_open[k], bk.bid[k]
        high, low = max(bk.sec_high[k], o, c), min(bk.sec_low[k], o, c)
        volume = self._volume(k, ticks)
        return [o, high, low, c, volume, volume * (high + low + c) / 3, ticks >> 32]

    def flush_second(self, start_ms: int, emit: Emit) -> dict[int, Bar]:
        """Emit the bars of the second starting at ``start_ms``; fold them into the minute.

        Returns:
            The second's bars by instrument position (for LULD and friends).
        """
        bk = self.book
        bars = {k: self.second_bar(k) for k, ticks in enumerate(bk.sec_ticks) if ticks}
        bk.start_second(quoted=self.family is not Market.INDICES)
        end_ms = start_ms + 1000
        minute = self.minute
        for k, bar in bars.items():
            if not self.day_open[k]:
                self.day_open[k] = int(bar[0])  # the official open: the day's first bar
            self.day_volume[k] += bar[4]
            self.day_pv[k] += bar[5]
            emit(self.second_topics[k], self._encode(self.second_pre[k], k, bar, start_ms, end_ms))
            held = minute.get(k)
            if held is None:
                minute[k] = bar.copy()
            else:
                _merge(held, bar)
        return bars

    def flush_minute(self, start_ms: int, emit: Emit) -> None:
        """Emit the minute bars of the minute starting at ``start_ms`` and start afresh."""
        end_ms = start_ms + 60_000
        for k, bar in self.minute.items():
            emit(self.minute_topics[k], self._encode(self.minute_pre[k], k, bar, start_ms, end_ms))
        self.minute = {}

    def _encode(self, prefix: bytes, k: int, bar: Bar, start: int, end: int) -> bytes:
        return b'%s%s,"s":%d,"e":%d}' % (prefix, self._body(k, bar), start, end)

    def _ohlc(self, bar: Bar) -> bytes:
        text = self.book.text
        o, h, low, c = (int(x) for x in bar[:4])
        return b'"o":%s,"c":%s,"h":%s,"l":%s' % (text[o], text[c], text[h], text[low])

    def _body_equity(self, k: int, bar: Bar) -> bytes:
        d = self.book.decimals[k]
        volume = int(bar[4])
        vw = _vwap(bar[5], bar[4], d)
        day = _vwap(self.day_pv[k], self.day_volume[k], d)
        return b'"v":%d,"av":%d,"op":%s,"vw":%s,%s,"a":%s,"z":%d' % (
            volume, self.day_volume[k], self.book.text[self.day_open[k]],
            float_text(vw, 4), self._ohlc(bar), float_text(day, 4), volume // int(bar[6]),
        )  # fmt: skip

    def _body_index(self, k: int, bar: Bar) -> bytes:
        return b'"op":%s,%s' % (self.book.text[self.day_open[k]], self._ohlc(bar))

    def _body_futures(self, k: int, bar: Bar) -> bytes:
        vw = _vwap(bar[5], bar[4], self.book.decimals[k])
        dollars = float_text(vw * bar[4], 2)
        return b'"v":%d,"dv":%s,%s,"n":%d' % (bar[4], dollars, self._ohlc(bar), bar[6])

    def _body_forex(self, k: int, bar: Bar) -> bytes:
        return b'%s,"v":%d' % (self._ohlc(bar), bar[6])

    def _body_crypto(self, k: int, bar: Bar) -> bytes:
        vw = _vwap(bar[5], bar[4], self.book.decimals[k])
        digits = max(4, self.book.decimals[k])
        return b'"v":%s,"vw":%s,"z":%d,%s' % (
            _volume_text(bar[4]),
            float_text(vw, digits),
            int(bar[4] / bar[6]),
            self._ohlc(bar),
        )


def _band_text(book: Book, k: int, key: int, factor: float) -> bytes:
    decimals = book.decimals[k]
    units = (key - decimals) // PRICE_SCALE
    cents = 10 ** max(0, decimals - 2)  # bands are set in cents
    return number_text(round(units * factor / cents) * cents, decimals)


def luld_band(book: Book, k: int) -> float:
    """The LULD percentage band of ``k``: 5% for the top names, 10% below, 20% under $3."""
    price = book.instruments[k].price
    if price < 3:
        return 0.20
    return 0.05 if k < 500 else 0.10


def luld_event(book: Book, k: int, key: int, indicator: int, t: int, q: int) -> bytes:
    """A ``LULD`` event for ``k`` with bands around the price key ``key``."""
    pct = luld_band(book, k)
    return b'{"ev":"LULD","T":%s,"h":%s,"l":%s,"i":[%d],"z":%d,"t":%d,"q":%d}' % (
        book.quoted[k], _band_text(book, k, key, 1 + pct), _band_text(book, k, key, 1 - pct),
        indicator, book.instruments[k].tape or 3, t, q,
    )  # fmt: skip


def noi_event(book: Book, k: int, rng: random.Random, t: int, seq: int) -> bytes:
    """A ``NOI`` (net order imbalance) event for ``k`` ahead of the closing cross."""
    tape = book.instruments[k].tape or 3
    paired = 100 * rng.randint(10, 5000)
    return b'{"ev":"NOI","T":%s,"t":%d,"at":1600,"a":"C","i":%d,"x":%d,"o":%d,"p":%d,"b":%s}' % (
        book.quoted[k], t, seq, 12 if tape == 3 else 10, 100 * rng.randint(1, 2000), paired,
        book.text[book.bid[k]],
    )  # fmt: skip


def xl2_event(book: Book, k: int, rng: random.Random, t: int, levels: int = 5) -> bytes:
    """An ``XL2`` book snapshot of crypto pair ``k``: ``levels`` prices a side."""
    bid, tick, spread = book.bid[k], book.tick[k], book.spread[k]
    size = book.instruments[k].size
    text = book.text

    def side(start: int, direction: int) -> bytes:
        rows = (
            b"[%s,%s]"
            % (text[start + direction * i * tick], float_text(size * rng.uniform(0.1, 4)))
            for i in range(levels)
            if start + direction * i * tick > tick
        )
        return b",".join(rows)

    x = book.instruments[k].exchanges[0] if book.instruments[k].exchanges else 1
    return b'{"ev":"XL2","pair":%s,"t":%d,"r":%d,"x":%d,"b":[%s],"a":[%s]}' % (
        book.quoted[k],
        t,
        t + 3,
        x,
        side(bid, -1),
        side(bid + spread, 1),
    )
