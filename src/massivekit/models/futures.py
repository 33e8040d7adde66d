"""Futures events (the ``futures`` cluster and each venue, ``futures/cme``...).

The codes ``T``, ``Q``, ``A`` and ``AM`` are those of stocks, with other
shapes: quotes carry per-side timestamps (``bt``, ``at``), bars carry a dollar
volume (``dv``) and a trade count (``n``). They are not in the pinned spec;
the fields follow Massive's futures WebSocket documentation.
"""

from __future__ import annotations

from msgspec import field

from massivekit.models._base import _SymbolEvent


class FuturesTrade(_SymbolEvent, tag="T", frozen=True, kw_only=True):
    """A futures trade (``T`` on a futures cluster).

    Attributes:
        symbol: contract (``sym``), e.g. ``ESZ5``.
        price: trade price per unit of the underlying (``p``).
        size: contracts traded (``s``).
        timestamp: Unix ms (``t``).
        sequence: per-ticker sequence number (``q``).
    """

    price: float = field(default=0.0, name="p")
    size: int = field(default=0, name="s")
    timestamp: int = field(default=0, name="t")
    sequence: int = field(default=0, name="q")


class FuturesQuote(_SymbolEvent, tag="Q", frozen=True, kw_only=True):
    """A futures best bid and offer (``Q`` on a futures cluster).

    Attributes:
        symbol: contract (``sym``).
        bid_price: bid price (``bp``).
        bid_size: contracts bid (``bs``).
        bid_timestamp: when the bid reached the exchange (``bt``).
        ask_price: ask price (``ap``).
        ask_size: contracts offered (``as``).
        ask_timestamp: when the ask reached the exchange (``at``).
        timestamp: quote time (``t``).
    """

    bid_price: float = field(default=0.0, name="bp")
    bid_size: int = field(default=0, name="bs")
    bid_timestamp: int | None = field(default=None, name="bt")
    ask_price: float = field(default=0.0, name="ap")
    ask_size: int = field(default=0, name="as")
    ask_timestamp: int | None = field(default=None, name="at")
    timestamp: int = field(default=0, name="t")


class FuturesAggregate(_SymbolEvent, frozen=True, kw_only=True):
    """A futures aggregate bar (``A``, ``AM`` on a futures cluster).

    Attributes:
        symbol: contract (``sym``).
        volume: contracts traded in the window (``v``).
        dollar_volume: total value traded in the window (``dv``).
        open: first price of the window (``o``).
        close: last price of the window (``c``).
        high: highest price of the window (``h``).
        low: lowest price of the window (``l``).
        transactions: number of trades in the window (``n``).
        start_timestamp: window start (``s``).
        end_timestamp: window end (``e``).
    """

    volume: int | float = field(default=0, name="v")
    dollar_volume: float | None = field(default=None, name="dv")
    open: float = field(default=0.0, name="o")
    close: float = field(default=0.0, name="c")
    high: float = field(default=0.0, name="h")
    low: float = field(default=0.0, name="l")
    transactions: int | None = field(default=None, name="n")
    start_timestamp: int = field(default=0, name="s")
    end_timestamp: int = field(default=0, name="e")


class FuturesSecondAggregate(FuturesAggregate, tag="A", frozen=True, kw_only=True):
    """A one-second futures bar (``A``); see :class:`FuturesAggregate`."""


class FuturesMinuteAggregate(FuturesAggregate, tag="AM", frozen=True, kw_only=True):
    """A one-minute futures bar (``AM``); see :class:`FuturesAggregate`."""
