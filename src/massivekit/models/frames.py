"""Decoding whole frames into typed events, one decoder per cluster.

Every server frame is a JSON array of events of mixed kinds, and fields and
codes are added over time (PROTOCOL.md): an unknown ``ev`` or a changed field
must never break a stream. So decoding has two speeds:

* the fast path decodes the whole frame with the cluster's tagged union in
  one C call (``msgspec.json.Decoder(list[Union])``, built once per cluster);
* if that fails validation, the frame (only that one) is split into raw
  events and each is decoded alone; an event that still fails becomes an
  :class:`~massivekit.models.events.UnknownEvent` holding its bytes, and is
  counted.

A frame that is not a JSON array at all raises
:class:`~massivekit.models.events.FrameDecodeError`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import GenericAlias
from typing import Any, Final, Generic, Literal, NamedTuple, TypeVar, Union, get_args, overload

import msgspec

from massivekit.config import Market
from massivekit.models.events import (
    BaseEvent,
    CryptoEvent,
    Event,
    ForexEvent,
    FrameDecodeError,
    FuturesEvent,
    IndicesEvent,
    OptionsEvent,
    StatusEvent,
    StocksEvent,
    UnknownEvent,
)
from massivekit.models.routing import frame_events_raw, key_of

logger = logging.getLogger(__name__)

E_co = TypeVar("E_co", bound=BaseEvent, covariant=True)

CLUSTER_EVENTS: Final[Mapping[Market, Any]] = {
    Market.STOCKS: StocksEvent,
    Market.OPTIONS: OptionsEvent,
    Market.FOREX: ForexEvent,
    Market.CRYPTO: CryptoEvent,
    Market.INDICES: IndicesEvent,
    Market.FUTURES: FuturesEvent,
}
"""The union of event classes each cluster family carries (futures venues use ``FUTURES``)."""

_MAX_LOGGED_CODES: Final = 64
"""Unknown codes are logged once each, up to this many per decoder (bounded memory)."""

_FuturesMarket = Literal[
    Market.FUTURES,
    Market.FUTURES_CME,
    Market.FUTURES_CBOT,
    Market.FUTURES_NYMEX,
    Market.FUTURES_COMEX,
]


class _Compiled(NamedTuple):
    frame: msgspec.json.Decoder[list[Any]]
    data: msgspec.json.Decoder[list[Any]]
    event: msgspec.json.Decoder[Any]
    by_code: Mapping[str, type[BaseEvent]]


@functools.cache
def _compiled(family: Market) -> _Compiled:
    # Built once per cluster family and shared by every FrameDecoder: msgspec
    # decoders are immutable and cost far more to build than to reuse.
    union = CLUSTER_EVENTS[family]
    classes: tuple[type[BaseEvent], ...] = get_args(union)
    data: Any = Union[tuple(c for c in classes if c is not StatusEvent)]  # noqa: UP007 (built at run time)
    return _Compiled(
        frame=msgspec.json.Decoder(GenericAlias(list, (union,))),
        data=msgspec.json.Decoder(GenericAlias(list, (data,))),
        event=msgspec.json.Decoder(union),
        by_code={cls.ev: cls for cls in classes},
    )


def event_type_for(market: Market, ev: str) -> type[BaseEvent] | None:
    """The class that decodes events coded ``ev`` on ``market``.

    Args:
        market: the cluster (futures venues share the futures classes).
        ev: the event code, e.g. ``"T"`` or ``"status"``.

    Returns:
        The event class (stocks ``T`` is :class:`EquityTrade`, futures ``T``
        is :class:`FuturesTrade`), or ``None`` if the cluster has no such event.
    """
    return _compiled(market.family).by_code.get(ev)


class FrameDecoder(Generic[E_co]):
    """Decode a cluster's frames into typed events, counting what it could not type.

    Counters (plain attributes, never reset):

    * ``frames``: frames decoded, including those that raised;
    * ``events``: events returned, typed and unknown;
    * ``unknown_events``: events returned as :class:`UnknownEvent`;
    * ``invalid_events``: those of them whose ``ev`` this cluster knows (a
      field of an unexpected type: the wire changed);
    * ``malformed_frames``: frames that raised :class:`FrameDecodeError`.
    """

    __slots__ = (
        "_compiled",
        "_logged_codes",
        "events",
        "frames",
        "invalid_events",
        "malformed_frames",
        "market",
        "unknown_events",
    )

    @overload
    def __init__(self: FrameDecoder[StocksEvent], market: Literal[Market.STOCKS]) -> None: ...
    @overload
    def __init__(self: FrameDecoder[OptionsEvent], market: Literal[Market.OPTIONS]) -> None: ...
    @overload
    def __init__(self: FrameDecoder[ForexEvent], market: Literal[Market.FOREX]) -> None: ...
    @overload
    def __init__(self: FrameDecoder[CryptoEvent], market: Literal[Market.CRYPTO]) -> None: ...
    @overload
    def __init__(self: FrameDecoder[IndicesEvent], market: Literal[Market.INDICES]) -> None: ...
    @overload
    def __init__(self: FrameDecoder[FuturesEvent], market: _FuturesMarket) -> None: ...
    @overload
    def __init__(self: FrameDecoder[Event], market: Market) -> None: ...

    def __init__(self, market: Market) -> None:
        """Build a decoder with its own counters (the msgspec decoders are shared).

        Args:
            market: the cluster whose frames this decodes.
        """
        self.market: Market = market
        self._compiled = _compiled(market.family)
        self._logged_codes: set[str | None] = set()
        self.frames = 0
        self.events = 0
        self.unknown_events = 0
        self.invalid_events = 0
        self.malformed_frames = 0

    def __repr__(self) -> str:
        return (
            f"FrameDecoder(market={self.market.value!r}, frames={self.frames},"
            f" events={self.events}, unknown_events={self.unknown_events})"
        )

    @property
    def decode_data(self) -> Callable[[bytes | str], list[E_co]]:
        """The cluster's bare msgspec decoder of data frames: the fastest way through one.

        It counts nothing and recovers nothing: a status event, an unknown
        ``ev`` or a changed field raises :class:`msgspec.ValidationError`, bad
        JSON :class:`msgspec.DecodeError`. For a hot path that hands such
        frames to the general path (where statuses reach the protocol and
        :meth:`decode` counts and recovers) and counts the others itself.
        """
        return self._compiled.data.decode

    def decode(self, data: bytes | bytearray | memoryview | str) -> list[E_co | UnknownEvent]:
        """Decode one frame.

        Args:
            data: one WebSocket frame (a JSON array of events), text or binary.

        Returns:
            One event per element of the array, in order: typed where the
            cluster knows the code and the fields fit, :class:`UnknownEvent`
            otherwise.

        Raises:
            FrameDecodeError: the frame is not valid JSON (nor UTF-8), or not a
                JSON array.
        """
        self.frames += 1
        try:
            try:
                events: list[E_co | UnknownEvent] = self._compiled.frame.decode(data)
            except msgspec.ValidationError:
                events = self._decode_each(data)
        except msgspec.DecodeError as exc:
            self.malformed_frames += 1
            raise FrameDecodeError("frame is not valid JSON", data) from exc
        except UnicodeDecodeError as exc:  # msgspec checks UTF-8 as it decodes strings
            self.malformed_frames += 1
            raise FrameDecodeError("frame is not valid UTF-8", data) from exc
        self.events += len(events)
        return events

    def _decode_each(self, data: bytes | bytearray | memoryview | str) -> list[Any]:
        try:
            raws = frame_events_raw(data)
        except FrameDecodeError:
            self.malformed_frames += 1
            raise
        decode_one = self._compiled.event.decode
        events: list[Any] = []
        for raw in raws:
            try:
                events.append(decode_one(raw))
            except msgspec.ValidationError:
                events.append(self._unknown(raw))
        return events

    def _unknown(self, raw: msgspec.Raw) -> UnknownEvent:
        ev, instrument = key_of(raw)
        self.unknown_events += 1
        if ev in self._compiled.by_code:
            self.invalid_events += 1
        if ev not in self._logged_codes and len(self._logged_codes) < _MAX_LOGGED_CODES:
            self._logged_codes.add(ev)
            logger.info(
                "< %s: event ev=%r not decoded (kept as UnknownEvent, counted)",
                self.market.value,
                ev,
            )
        return UnknownEvent(ev, instrument, bytes(raw))


@functools.cache
def _shared_decoder(market: Market) -> FrameDecoder[Any]:
    return FrameDecoder(market)


@overload
def decoder_for(market: Literal[Market.STOCKS]) -> FrameDecoder[StocksEvent]: ...
@overload
def decoder_for(market: Literal[Market.OPTIONS]) -> FrameDecoder[OptionsEvent]: ...
@overload
def decoder_for(market: Literal[Market.FOREX]) -> FrameDecoder[ForexEvent]: ...
@overload
def decoder_for(market: Literal[Market.CRYPTO]) -> FrameDecoder[CryptoEvent]: ...
@overload
def decoder_for(market: Literal[Market.INDICES]) -> FrameDecoder[IndicesEvent]: ...
@overload
def decoder_for(market: _FuturesMarket) -> FrameDecoder[FuturesEvent]: ...
@overload
def decoder_for(market: Market) -> FrameDecoder[Event]: ...


def decoder_for(market: Market) -> FrameDecoder[Any]:
    """The process-wide decoder of a cluster (cached: one per market).

    Its counters are shared by every caller; build a :class:`FrameDecoder`
    for counters of your own (it reuses the same compiled msgspec decoders).

    Args:
        market: the cluster.

    Returns:
        The shared :class:`FrameDecoder` for ``market``.
    """
    return _shared_decoder(market)
