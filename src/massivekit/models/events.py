"""Typed WebSocket events: one frozen msgspec Struct per Massive ``ev`` code.

Every server frame is a JSON array of events tagged by ``ev`` (PROTOCOL.md,
"WebSocket"). Each class here maps the terse wire keys to readable names
(``price`` ← ``p``, ``symbol`` ← ``sym``) and is tagged with its ``ev`` code, so
a per-cluster union decodes a whole frame in one C call
(:mod:`massivekit.models.frames`). Stock-like events live here, forex and
crypto ones in :mod:`~massivekit.models.currency`, futures ones in
:mod:`~massivekit.models.futures`; all are importable from here.

Choices the wire forces on us:

* Fields are added over time, so unknown keys are ignored (msgspec's default)
  and every field has a default: a key that is absent decodes to ``None``
  (fields some clusters or events omit) or to a zero value (fields every
  example carries, such as the instrument, prices and ``t``). Encoding omits
  defaults, so an event re-encodes to the keys it came with.
* The same code means different things per cluster (stocks ``T`` and futures
  ``T``), and ``A``/``AM``, ``CA``/``CAS``, ``XA``/``XAS`` share a shape: each
  code gets its own class, and shared shapes are shared base classes.
* Types follow what the published examples carry, not only the schema: forex
  ``C.x`` is the string ``"44"``, crypto sizes and volumes are fractional,
  the stocks trade id ``i`` is a string while the crypto one is an integer.
  Timestamps stay exact ``int`` (ms, µs or ns depending on the event).
* No field holds anything that could refer back to an event, so reference
  cycles are impossible and ``gc=False`` is safe: the collector never has to
  track the millions of small objects a busy stream produces.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec
from msgspec import field

from massivekit.errors import DeserializeError
from massivekit.errors import preview as _preview
from massivekit.models._base import BaseEvent, StatusEvent, _SymbolEvent, _TickerEvent
from massivekit.models.currency import (
    CryptoLevel2Book,
    CryptoMinuteAggregate,
    CryptoQuote,
    CryptoSecondAggregate,
    CryptoTrade,
    CurrencyAggregate,
    ForexMinuteAggregate,
    ForexQuote,
    ForexSecondAggregate,
)
from massivekit.models.futures import (
    FuturesAggregate,
    FuturesMinuteAggregate,
    FuturesQuote,
    FuturesSecondAggregate,
    FuturesTrade,
)

__all__ = [
    "EVENT_CLASSES",
    "PREVIEW_CHARS",
    "Aggregate",
    "BaseEvent",
    "CryptoEvent",
    "CryptoLevel2Book",
    "CryptoMinuteAggregate",
    "CryptoQuote",
    "CryptoSecondAggregate",
    "CryptoTrade",
    "CurrencyAggregate",
    "EquityQuote",
    "EquityTrade",
    "Event",
    "FairMarketValue",
    "ForexEvent",
    "ForexMinuteAggregate",
    "ForexQuote",
    "ForexSecondAggregate",
    "FrameDecodeError",
    "FuturesAggregate",
    "FuturesEvent",
    "FuturesMinuteAggregate",
    "FuturesQuote",
    "FuturesSecondAggregate",
    "FuturesTrade",
    "Imbalance",
    "IndexValue",
    "IndicesEvent",
    "LaunchpadValue",
    "LimitUpLimitDown",
    "MinuteAggregate",
    "OptionsEvent",
    "SecondAggregate",
    "StatusEvent",
    "StocksEvent",
    "UnknownEvent",
]

PREVIEW_CHARS = 120
"""How much of an undecodable frame an error keeps (redacted)."""


class FrameDecodeError(DeserializeError, ValueError):
    """A frame that is not a JSON array: not JSON at all, or another JSON value.

    Attributes:
        preview: a short, redacted excerpt of the offending frame.
    """

    def __init__(self, reason: str, data: bytes | bytearray | memoryview | str) -> None:
        """Build the error from what went wrong and the frame it went wrong on.

        Args:
            reason: why the frame was refused, in words.
            data: the frame; only a short redacted preview of it is kept.
        """
        raw = data if isinstance(data, str) else bytes(data)
        self.preview: str = _preview(raw, PREVIEW_CHARS) or ""
        super().__init__(f"{reason}: {self.preview!r}")
        self.body_preview = self.preview


# --------------------------------------------------------------------------- stocks, options


class EquityTrade(_SymbolEvent, tag="T", frozen=True, kw_only=True):
    """A stock or option trade (``T``).

    Attributes:
        symbol: ticker or option contract (``sym``), e.g. ``O:SPY241220P00720000``.
        exchange: exchange id (``x``).
        trade_id: trade id (``i``); a string on the wire, absent for options.
        tape: 1 NYSE, 2 AMEX, 3 Nasdaq (``z``); absent for options.
        price: trade price (``p``).
        size: trade size (``s``).
        conditions: trade condition codes (``c``).
        timestamp: SIP timestamp, Unix ms (``t``).
        sequence: per-ticker sequence number, increasing but not contiguous (``q``).
        trf_id: Trade Reporting Facility id (``trfi``), off-exchange trades only.
        trf_timestamp: TRF timestamp, Unix ms (``trft``).
    """

    exchange: int = field(default=0, name="x")
    trade_id: str | None = field(default=None, name="i")
    tape: int | None = field(default=None, name="z")
    price: float = field(default=0.0, name="p")
    size: int = field(default=0, name="s")
    conditions: tuple[int, ...] = field(default=(), name="c")
    timestamp: int = field(default=0, name="t")
    sequence: int = field(default=0, name="q")
    trf_id: int | None = field(default=None, name="trfi")
    trf_timestamp: int | None = field(default=None, name="trft")


class EquityQuote(_SymbolEvent, tag="Q", frozen=True, kw_only=True):
    """A stock or option NBBO quote (``Q``).

    Attributes:
        symbol: ticker or option contract (``sym``).
        bid_exchange: bid exchange id (``bx``).
        bid_price: bid price (``bp``).
        bid_size: bid size (``bs``).
        ask_exchange: ask exchange id (``ax``).
        ask_price: ask price (``ap``).
        ask_size: ask size (``as``).
        condition: quote condition (``c``); stocks only.
        indicators: indicator codes (``i``); stocks only.
        timestamp: SIP timestamp, Unix ms (``t``).
        sequence: per-ticker sequence number (``q``).
        tape: 1 NYSE, 2 AMEX, 3 Nasdaq (``z``); stocks only.
    """

    bid_exchange: int = field(default=0, name="bx")
    bid_price: float = field(default=0.0, name="bp")
    bid_size: int = field(default=0, name="bs")
    ask_exchange: int = field(default=0, name="ax")
    ask_price: float = field(default=0.0, name="ap")
    ask_size: int = field(default=0, name="as")
    condition: int | None = field(default=None, name="c")
    indicators: tuple[int, ...] | None = field(default=None, name="i")
    timestamp: int = field(default=0, name="t")
    sequence: int = field(default=0, name="q")
    tape: int | None = field(default=None, name="z")


class Aggregate(_SymbolEvent, frozen=True, kw_only=True):
    """An aggregate bar of stocks, options, indices or launchpad (any cluster).

    Index bars carry no volume statistics, and launchpad crypto bars carry
    fractional volumes, hence the optional ``int | float`` volume fields.

    Attributes:
        symbol: ticker, contract, index (``I:SPX``) or pair (``X:BTC-USD``) (``sym``).
        volume: volume in the window (``v``).
        day_volume: today's accumulated volume (``av``).
        day_open: today's official opening price (``op``).
        vwap: the window's volume-weighted average price (``vw``).
        open: first price of the window (``o``).
        close: last price of the window (``c``).
        high: highest price of the window (``h``).
        low: lowest price of the window (``l``).
        day_vwap: today's volume-weighted average price (``a``).
        average_size: average trade size in the window (``z``).
        start_timestamp: window start, Unix ms (``s``).
        end_timestamp: window end, Unix ms (``e``).
        otc: whether the ticker is OTC (``otc``); present only when true.
    """

    volume: int | float | None = field(default=None, name="v")
    day_volume: int | float | None = field(default=None, name="av")
    day_open: float | None = field(default=None, name="op")
    vwap: float | None = field(default=None, name="vw")
    open: float = field(default=0.0, name="o")
    close: float = field(default=0.0, name="c")
    high: float = field(default=0.0, name="h")
    low: float = field(default=0.0, name="l")
    day_vwap: float | None = field(default=None, name="a")
    average_size: int | float | None = field(default=None, name="z")
    start_timestamp: int = field(default=0, name="s")
    end_timestamp: int = field(default=0, name="e")
    otc: bool | None = None


class SecondAggregate(Aggregate, tag="A", frozen=True, kw_only=True):
    """A one-second aggregate bar (``A``); see :class:`Aggregate` for the fields."""


class MinuteAggregate(Aggregate, tag="AM", frozen=True, kw_only=True):
    """A one-minute aggregate bar (``AM``); see :class:`Aggregate` for the fields."""


class LimitUpLimitDown(_TickerEvent, tag="LULD", frozen=True, kw_only=True):
    """A stock's limit-up/limit-down price band (``LULD``).

    Attributes:
        symbol: ticker (``T``, not ``sym``).
        high_price: upper band (``h``).
        low_price: lower band (``l``).
        indicators: indicator codes (``i``).
        tape: 1 NYSE, 2 AMEX, 3 Nasdaq (``z``).
        timestamp: event time (``t``); examples carry microseconds.
        sequence: per-ticker sequence number (``q``).
    """

    high_price: float = field(default=0.0, name="h")
    low_price: float = field(default=0.0, name="l")
    indicators: tuple[int, ...] = field(default=(), name="i")
    tape: int | None = field(default=None, name="z")
    timestamp: int = field(default=0, name="t")
    sequence: int = field(default=0, name="q")


class Imbalance(_TickerEvent, tag="NOI", frozen=True, kw_only=True):
    """A stock's net order imbalance before an auction (``NOI``).

    Attributes:
        symbol: ticker (``T``, not ``sym``).
        timestamp: event time (``t``); examples carry nanoseconds.
        auction_time: planned auction time as ``HHMM`` (``at``), e.g. ``930``.
        auction_type: ``O`` early open, ``M`` core open, ``H`` halt/IPO,
            ``C`` close... (``a``).
        symbol_sequence: per-symbol sequence (``i``).
        exchange: exchange id (``x``).
        imbalance_quantity: imbalance quantity (``o``).
        paired_quantity: paired quantity (``p``).
        book_clearing_price: book clearing price (``b``).
    """

    timestamp: int = field(default=0, name="t")
    auction_time: int = field(default=0, name="at")
    auction_type: str = field(default="", name="a")
    symbol_sequence: int = field(default=0, name="i")
    exchange: int = field(default=0, name="x")
    imbalance_quantity: int = field(default=0, name="o")
    paired_quantity: int = field(default=0, name="p")
    book_clearing_price: float = field(default=0.0, name="b")


# --------------------------------------------------------------------------- business, launchpad


class FairMarketValue(_SymbolEvent, tag="FMV", frozen=True, kw_only=True):
    """Massive's fair market value of an instrument (``FMV``, business hosts, any cluster).

    Attributes:
        symbol: ticker, contract or pair (``sym``), e.g. ``C:EURUSD``, ``X:BTC-USD``.
        fmv: the fair market value (``fmv``).
        timestamp: event time (``t``); ms or ns depending on the cluster.
    """

    fmv: float = 0.0
    timestamp: int = field(default=0, name="t")


class LaunchpadValue(_SymbolEvent, tag="LV", frozen=True, kw_only=True):
    """The current value of an instrument (``LV``, launchpad host, any cluster).

    Attributes:
        symbol: ticker, contract or pair (``sym``).
        value: the value (``val``).
        timestamp: event time (``t``); ms or ns depending on the cluster.
    """

    value: float = field(default=0.0, name="val")
    timestamp: int = field(default=0, name="t")


# --------------------------------------------------------------------------- indices


class IndexValue(_TickerEvent, tag="V", frozen=True, kw_only=True):
    """An index value (``V``).

    Attributes:
        symbol: index ticker (``T``, not ``sym``), e.g. ``I:SPX``.
        value: the index value (``val``).
        timestamp: Unix ms (``t``).
    """

    value: float = field(default=0.0, name="val")
    timestamp: int = field(default=0, name="t")


# --------------------------------------------------------------------------- unknown


class UnknownEvent(msgspec.Struct, frozen=True, gc=False):
    """An event a cluster's decoder could not type: an unknown ``ev`` or a bad field.

    It is kept rather than dropped, so that a new event kind or a changed
    field never breaks a stream and is never lost silently.

    Attributes:
        ev: the event's ``ev`` code, ``None`` when it has none (or not a string).
        instrument: the first string among ``sym``, ``pair`` and ``T``, if any.
        raw: the event exactly as it came on the wire.
    """

    ev: str | None
    instrument: str | None
    raw: bytes

    @property
    def topic(self) -> str | None:
        """``EV.INSTRUMENT`` when both are known, else ``None``."""
        if self.ev is None or self.instrument is None:
            return None
        return f"{self.ev}.{self.instrument}"


# --------------------------------------------------------------------------- unions

StocksEvent: TypeAlias = (
    EquityTrade
    | EquityQuote
    | SecondAggregate
    | MinuteAggregate
    | LimitUpLimitDown
    | Imbalance
    | FairMarketValue
    | LaunchpadValue
    | StatusEvent
)
"""Events of the ``stocks`` cluster (with business FMV and launchpad LV)."""

OptionsEvent: TypeAlias = (
    EquityTrade
    | EquityQuote
    | SecondAggregate
    | MinuteAggregate
    | FairMarketValue
    | LaunchpadValue
    | StatusEvent
)
"""Events of the ``options`` cluster."""

ForexEvent: TypeAlias = (
    ForexQuote
    | ForexMinuteAggregate
    | ForexSecondAggregate
    | FairMarketValue
    | MinuteAggregate
    | LaunchpadValue
    | StatusEvent
)
"""Events of the ``forex`` cluster (launchpad ``AM`` has the stock-like shape, with ``sym``)."""

CryptoEvent: TypeAlias = (
    CryptoTrade
    | CryptoQuote
    | CryptoMinuteAggregate
    | CryptoSecondAggregate
    | CryptoLevel2Book
    | FairMarketValue
    | MinuteAggregate
    | LaunchpadValue
    | StatusEvent
)
"""Events of the ``crypto`` cluster (launchpad ``AM`` has the stock-like shape, with ``sym``)."""

IndicesEvent: TypeAlias = (
    SecondAggregate | MinuteAggregate | IndexValue | FairMarketValue | LaunchpadValue | StatusEvent
)
"""Events of the ``indices`` cluster (FMV and LV accepted like the topic table does)."""

FuturesEvent: TypeAlias = (
    FuturesTrade | FuturesQuote | FuturesSecondAggregate | FuturesMinuteAggregate | StatusEvent
)
"""Events of the ``futures`` cluster and of each futures venue (``futures/cme``...)."""

Event: TypeAlias = (
    StocksEvent | OptionsEvent | ForexEvent | CryptoEvent | IndicesEvent | FuturesEvent
)
"""Any typed event of any cluster."""

EVENT_CLASSES: tuple[type[BaseEvent], ...] = (
    StatusEvent,
    EquityTrade,
    EquityQuote,
    SecondAggregate,
    MinuteAggregate,
    LimitUpLimitDown,
    Imbalance,
    FairMarketValue,
    LaunchpadValue,
    IndexValue,
    ForexQuote,
    ForexMinuteAggregate,
    ForexSecondAggregate,
    CryptoMinuteAggregate,
    CryptoSecondAggregate,
    CryptoTrade,
    CryptoQuote,
    CryptoLevel2Book,
    FuturesTrade,
    FuturesQuote,
    FuturesSecondAggregate,
    FuturesMinuteAggregate,
)
"""Every concrete (tagged) event class."""


def _stamp_ev_codes(classes: tuple[type[BaseEvent], ...]) -> None:
    # msgspec fills ``__struct_config__`` only after the class body (and
    # ``__init_subclass__``) ran, so the ClassVar is copied from the tag here:
    # the tag stays the one source of truth, and ``event.ev`` is a plain
    # class-attribute read on hot paths.
    for cls in classes:
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str):  # pragma: no cover - every class above is tagged
            raise TypeError(f"{cls.__name__} has no string tag")
        cls.ev = tag


_stamp_ev_codes(EVENT_CLASSES)
