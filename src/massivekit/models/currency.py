"""Forex and crypto events: quotes, trades, bars and the crypto book.

Forex ``C`` names its pair in ``p``; crypto ``XT`` uses ``p`` for the price and
names its pair in ``pair``, like every other forex and crypto event
(PROTOCOL.md, "Events and the field that names the instrument").
"""

from __future__ import annotations

from msgspec import field

from massivekit.models._base import BaseEvent, _PairEvent


class ForexQuote(BaseEvent, tag="C", frozen=True, kw_only=True):
    """A forex quote (``C``): here ``p`` is the pair, not a price.

    Attributes:
        pair: currency pair (``p``), e.g. ``USD/CNH``.
        exchange: exchange id (``x``); the published example sends it as a
            string (``"44"``), the schema as an integer, so both are accepted.
        ask_price: ask price (``a``).
        bid_price: bid price (``b``).
        timestamp: Unix ms (``t``).
    """

    pair: str = field(default="", name="p")
    exchange: int | str = field(default=0, name="x")
    ask_price: float = field(default=0.0, name="a")
    bid_price: float = field(default=0.0, name="b")
    timestamp: int = field(default=0, name="t")

    @property
    def instrument(self) -> str | None:
        return self.pair or None


class CurrencyAggregate(_PairEvent, frozen=True, kw_only=True):
    """A forex or crypto aggregate bar (``CA``, ``CAS``, ``XA``, ``XAS``).

    Attributes:
        pair: currency or crypto pair (``pair``), e.g. ``USD/EUR``, ``BTC-USD``.
        open: first price of the window (``o``).
        close: last price of the window (``c``).
        high: highest price of the window (``h``).
        low: lowest price of the window (``l``).
        volume: volume in the window (``v``); fractional for crypto.
        vwap: volume-weighted average price (``vw``); crypto only.
        average_size: average trade size (``z``); crypto only.
        start_timestamp: window start, Unix ms (``s``).
        end_timestamp: window end, Unix ms (``e``); the forex example omits it.
    """

    open: float = field(default=0.0, name="o")
    close: float = field(default=0.0, name="c")
    high: float = field(default=0.0, name="h")
    low: float = field(default=0.0, name="l")
    volume: int | float = field(default=0, name="v")
    vwap: float | None = field(default=None, name="vw")
    average_size: int | float | None = field(default=None, name="z")
    start_timestamp: int = field(default=0, name="s")
    end_timestamp: int | None = field(default=None, name="e")


class ForexMinuteAggregate(CurrencyAggregate, tag="CA", frozen=True, kw_only=True):
    """A one-minute forex bar (``CA``); see :class:`CurrencyAggregate`."""


class ForexSecondAggregate(CurrencyAggregate, tag="CAS", frozen=True, kw_only=True):
    """A one-second forex bar (``CAS``); see :class:`CurrencyAggregate`."""


class CryptoMinuteAggregate(CurrencyAggregate, tag="XA", frozen=True, kw_only=True):
    """A one-minute crypto bar (``XA``); see :class:`CurrencyAggregate`."""


class CryptoSecondAggregate(CurrencyAggregate, tag="XAS", frozen=True, kw_only=True):
    """A one-second crypto bar (``XAS``); see :class:`CurrencyAggregate`."""


class CryptoTrade(_PairEvent, tag="XT", frozen=True, kw_only=True):
    """A crypto trade (``XT``): ``pair`` names the instrument, ``p`` is the price.

    Attributes:
        pair: crypto pair (``pair``), e.g. ``BTC-USD``.
        price: trade price (``p``).
        size: trade size (``s``), fractional.
        conditions: ``1`` sell side, ``2`` buy side (``c``).
        trade_id: trade id (``i``), an integer on the wire, optional.
        exchange: crypto exchange id (``x``).
        timestamp: Unix ms (``t``).
        received_timestamp: when Massive received it, Unix ms (``r``).
    """

    # Declared in wire order (the spec's example): msgspec decodes fastest so.
    price: float = field(default=0.0, name="p")
    timestamp: int = field(default=0, name="t")
    size: float = field(default=0.0, name="s")
    conditions: tuple[int, ...] = field(default=(), name="c")
    trade_id: int | str | None = field(default=None, name="i")
    exchange: int = field(default=0, name="x")
    received_timestamp: int | None = field(default=None, name="r")


class CryptoQuote(_PairEvent, tag="XQ", frozen=True, kw_only=True):
    """A crypto quote (``XQ``).

    Attributes:
        pair: crypto pair (``pair``).
        bid_price: bid price (``bp``).
        bid_size: bid size (``bs``), fractional.
        ask_price: ask price (``ap``).
        ask_size: ask size (``as``), fractional.
        exchange: crypto exchange id (``x``).
        timestamp: Unix ms (``t``).
        received_timestamp: when Massive received it, Unix ms (``r``).
    """

    bid_price: float = field(default=0.0, name="bp")
    bid_size: float = field(default=0.0, name="bs")
    ask_price: float = field(default=0.0, name="ap")
    ask_size: float = field(default=0.0, name="as")
    timestamp: int = field(default=0, name="t")
    exchange: int = field(default=0, name="x")
    received_timestamp: int | None = field(default=None, name="r")


class CryptoLevel2Book(_PairEvent, tag="XL2", frozen=True, kw_only=True):
    """A crypto level-2 book snapshot (``XL2``, deprecated by Massive).

    Attributes:
        pair: crypto pair (``pair``).
        bids: ``(price, size)`` levels (``b``).
        asks: ``(price, size)`` levels (``a``).
        exchange: crypto exchange id (``x``).
        timestamp: Unix ms (``t``).
        received_timestamp: when Massive received it, Unix ms (``r``).
    """

    timestamp: int = field(default=0, name="t")
    received_timestamp: int | None = field(default=None, name="r")
    exchange: int = field(default=0, name="x")
    bids: tuple[tuple[float, float], ...] = field(default=(), name="b")
    asks: tuple[tuple[float, float], ...] = field(default=(), name="a")
