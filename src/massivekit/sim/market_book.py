"""Per-instrument state of the market simulator, laid out for a fast inner loop.

State lives in parallel lists indexed by the instrument's position in its universe
(``bid[k]``, ``spread[k]``...): a list index is the cheapest lookup CPython has.

Prices are integers, never floats, and carry their own number of decimals so one
cache of wire text serves every instrument: a *price key* is ``units * 17 +
decimals``, where ``units`` counts ``10**-decimals``. Adding whole multiples of 17
keeps the decimals; the odd factor spreads keys over a dict's slots (a power of two
would leave the low bits constant and pile every key into a few slots).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence

from massivekit.sim.universe import Instrument, Universe

__all__ = [
    "COUNT_ONE",
    "PRICE_SCALE",
    "Book",
    "PriceText",
    "build_schedule",
    "number_text",
    "price_key",
    "price_value",
]

PRICE_SCALE = 17
COUNT_ONE = 1 << 32
"""Trades add ``size + COUNT_ONE`` to ``Book.sec_ticks``: volume below, count above."""
_TEXT_CACHE_LIMIT = 250_000  # distinct price levels kept; refilled on demand past this
_BAND = 0.03  # prices wander at most 3% from their anchor (shock moves the anchor)
_STEP_BP = 3e-5  # one random-walk step is about 0.3 bp of the price, at least one tick


def price_key(units: int, decimals: int) -> int:
    """The price key of ``units * 10**-decimals``."""
    return units * PRICE_SCALE + decimals


def price_value(key: int) -> float:
    """The price a key stands for."""
    units, decimals = divmod(key, PRICE_SCALE)
    return units / 10.0**decimals


def number_text(units: int, decimals: int) -> bytes:
    """JSON text of ``units * 10**-decimals``: exact, no exponent, at least one decimal.

    Trailing zeros are dropped (``190.1``), as the real feed's encoder does.
    """
    if decimals == 0:
        return b"%d.0" % units
    whole, frac = divmod(units, 10**decimals)
    digits = (b"%0*d" % (decimals, frac)).rstrip(b"0") or b"0"
    return b"%d.%s" % (whole, digits)


def float_text(value: float, decimals: int = 8) -> bytes:
    """JSON text of a float rounded to ``decimals`` places, same rules as :func:`number_text`."""
    return number_text(round(value * 10**decimals), decimals)


class PriceText(dict[int, bytes]):
    """Wire text of price keys, made on first use (a plain dict lookup afterwards)."""

    def __missing__(self, key: int) -> bytes:
        if len(self) >= _TEXT_CACHE_LIMIT:
            self.clear()  # a bound, not an LRU: refilling the hot levels is cheap
        units, decimals = divmod(key, PRICE_SCALE)
        text = self[key] = number_text(units, decimals)
        return text


def build_schedule(weights: Sequence[float], rng: random.Random) -> list[int]:
    """A shuffled table of instrument positions, each as often as its weight says.

    Every instrument appears at least once, so even the deepest tail symbol trades
    now and then; walking the table cyclically replays the Zipf skew without a
    random draw per event.
    """
    size = 1 << 12
    while size < 16 * len(weights) and size < 1 << 17:
        size <<= 1
    table: list[int] = []
    for k, weight in enumerate(weights):
        table += [k] * max(1, round(weight * size))
    rng.shuffle(table)
    return table


class Book:
    """Prices, bands and wire prefixes of every instrument of one universe."""

    __slots__ = (
        "anchor",
        "ask",
        "bid",
        "decimals",
        "extra",
        "halted",
        "hi",
        "index",
        "instruments",
        "lo",
        "names",
        "quoted",
        "sec_high",
        "sec_low",
        "sec_open",
        "sec_ticks",
        "sec_volume",
        "spread",
        "step",
        "text",
        "tick",
        "volatility",
    )

    def __init__(self, universe: Universe) -> None:
        """Start every instrument at its reference price, a typical spread wide."""
        insts = universe.instruments
        self.instruments: tuple[Instrument, ...] = insts
        self.names = [inst.symbol for inst in insts]
        self.quoted = [json.dumps(name).encode() for name in self.names]
        self.index = {name: k for k, name in enumerate(self.names)}
        self.decimals = [inst.decimals for inst in insts]
        self.tick = [inst.tick * PRICE_SCALE for inst in insts]
        self.spread = [inst.spread * inst.tick * PRICE_SCALE for inst in insts]
        self.anchor = [price_key(inst.price_units, inst.decimals) for inst in insts]
        self.bid = [
            a - (inst.spread // 2) * t
            for a, inst, t in zip(self.anchor, insts, self.tick, strict=True)
        ]
        self.extra = [0] * len(insts)  # ticks the current quote is wider than typical
        self.ask = [b + s for b, s in zip(self.bid, self.spread, strict=True)]
        self.volatility = [1.0] * len(insts)
        self.step = [0] * len(insts)
        self.lo = [0] * len(insts)
        self.hi = [0] * len(insts)
        self.halted: set[int] = set()
        self.text = PriceText()
        for k in range(len(insts)):
            self._rebound(k)
        # The current second, kept by the feeds for the aggregates: the quotes' range
        # (every trade prints inside it), packed volume and count, float volume (crypto).
        self.sec_open: list[int] = []
        self.sec_low: list[int] = []
        self.sec_high: list[int] = []
        self.sec_ticks: list[int] = []
        self.sec_volume: list[float] = []
        self.start_second()

    def start_second(self, *, quoted: bool = True) -> None:
        """Reset the per-second tracking: the range starts at the standing quote.

        Args:
            quoted: whether instruments have an ask (indices have only a value).
        """
        n = len(self.bid)
        self.sec_open = self.bid.copy()
        self.sec_low = self.bid.copy()
        self.sec_high = (self.ask if quoted else self.bid).copy()
        self.sec_ticks = [0] * n
        self.sec_volume = [0.0] * n

    def _widen_second(self, k: int) -> None:
        """Keep the second's range around a quote that jumped (shock, new band)."""
        self.sec_low[k] = min(self.sec_low[k], self.bid[k])
        self.sec_high[k] = max(self.sec_high[k], self.ask[k])

    def __len__(self) -> int:
        return len(self.names)

    def prefixes(self, template: bytes) -> list[bytes]:
        """``template % quoted_symbol`` for every instrument (``%s`` marks the symbol)."""
        return [template % quoted for quoted in self.quoted]

    def topics(self, ev: str) -> list[str]:
        """The interned subscription topic ``ev.SYMBOL`` of every instrument."""
        return [sys.intern(f"{ev}.{name}") for name in self.names]

    def bid_price(self, k: int) -> float:
        """The current bid of instrument ``k`` as a price."""
        return price_value(self.bid[k])

    def ask_price(self, k: int) -> float:
        """The current ask of instrument ``k`` as a price."""
        return price_value(self.ask[k])

    def move_anchor(self, k: int, factor: float) -> float:
        """Scale the anchor and the bid of ``k`` by ``factor``; returns the new bid price.

        The walk's band follows the anchor, so the instrument stays near its new level.
        """
        tick = self.tick[k]
        decimals = self.decimals[k]

        def scaled(key: int) -> int:
            ticks = max(1, round((key - decimals) * factor / tick))
            return ticks * tick + decimals

        self.anchor[k] = scaled(self.anchor[k])
        self.bid[k] = scaled(self.bid[k])
        self._rebound(k)
        self._widen_second(k)
        return price_value(self.bid[k])

    def set_volatility(self, k: int, factor: float) -> None:
        """Multiply the step and the band of ``k`` by ``factor`` (1 restores the default)."""
        self.volatility[k] = factor
        self._rebound(k)
        self._widen_second(k)

    def _rebound(self, k: int) -> None:
        """Recompute step and band of ``k`` from its anchor and volatility; clamp the bid."""
        tick, decimals, anchor = self.tick[k], self.decimals[k], self.anchor[k]
        level = anchor - decimals  # the anchor without its decimals tag: units * 17
        vol = self.volatility[k]
        self.step[k] = max(1, round(level * _STEP_BP * vol / tick)) * tick
        band = max(round(level * _BAND * vol / tick) * tick, 20 * self.step[k])
        self.lo[k] = max(tick + decimals, anchor - band)
        self.hi[k] = max(anchor + band, self.lo[k] + 4 * self.step[k])
        self.bid[k] = min(max(self.bid[k], self.lo[k]), self.hi[k])
        self.ask[k] = self.bid[k] + self.spread[k] + self.extra[k] * tick
