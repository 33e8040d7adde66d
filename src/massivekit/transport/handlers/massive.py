"""The Massive WebSocket protocol as a transport handler.

Everything Massive-specific is decided by the sans-I/O
:class:`~massivekit.protocol.client.ClientProtocol` (the handshake, one
subscribe request in flight with refusals attributed by elimination, local
answers for unknown prefixes and repeated subscriptions, the disconnect
statuses); :class:`MassiveSession` only translates its events into the
transport's :class:`~massivekit.transport.handler.Incoming` values and adds
two things it needs from a connection actor:

* the fast path: once READY, a frame whose head holds no ``status`` is pure
  market data, which ``ClientProtocol.receive`` would hand on untouched, so
  the actor passes it to the sink without building events. Massive sends
  statuses in frames of their own, each opening with ``{"ev":"status"``, so
  the head (:data:`STATUS_HEAD` bytes) tells: scanning whole frames would
  cost 0.4 ns a byte, 5 µs for a frame of 100 events, a sixth of decoding it.
  (Were a status ever to follow data in one frame, it would reach the user
  as a typed ``StatusEvent`` rather than be acted on.)
* how to come back: ``max_connections`` means another holder of the key
  wants the slot (``Reconnect.LATER``, no kicking war), ``auth_failed`` is
  terminal, ``slow_consumer``/``force_disconnect``/``auth_timeout`` reconnect
  after the usual backoff.

Massive has no request/response exchange and no protocol ping: the actor
uses WebSocket pings for its heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.protocol.client import (
    DEFAULT_BATCH,
    AuthFailed,
    AuthSucceeded,
    ClientEvent,
    ClientProtocol,
    Connected,
    Data,
    DisconnectNotice,
    MalformedFrame,
    Request,
    RequestDone,
    StatusNotice,
)
from massivekit.protocol.status import Status
from massivekit.transport.handler import (
    AuthRejected,
    Disconnect,
    Incoming,
    ProtocolSession,
    Ready,
    Reconnect,
    SubscriptionResult,
    System,
    Unknown,
    Update,
)

__all__ = ["STATUS_HEAD", "MassiveHandler", "MassiveSession"]

STATUS_HEAD: Final = 32
"""Bytes of a frame's head searched for ``status``: room for ``[{"ev":"status"``
with any spacing."""

_RECONNECT: dict[str, Reconnect] = {
    Status.MAX_CONNECTIONS: Reconnect.LATER,
    Status.FORCE_DISCONNECT: Reconnect.BACKOFF,
    Status.SLOW_CONSUMER: Reconnect.BACKOFF,
}


class MassiveHandler:
    """Makes a :class:`MassiveSession` per connection.

    Args:
        api_key: the key sent in the ``auth`` action (never logged).
        market: the cluster, for topic validation.
        batch_size: the most topics in one subscribe action.
    """

    def __init__(self, api_key: ApiKey, market: Market, *, batch_size: int = DEFAULT_BATCH) -> None:
        self.api_key = api_key
        self.market = market
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"MassiveHandler(market={self.market.value!r})"

    def open_session(self) -> MassiveSession:
        """A fresh session (a fresh :class:`ClientProtocol`) for one connection."""
        return MassiveSession(ClientProtocol(self.api_key, self.market, batch_size=self.batch_size))


class MassiveSession(ProtocolSession):
    """One Massive connection, driving a :class:`ClientProtocol`.

    Args:
        protocol: the sans-I/O client protocol of this connection.
    """

    def __init__(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol

    def __repr__(self) -> str:
        return f"MassiveSession({self.protocol!r})"

    def on_open(self) -> list[Incoming]:
        """Nothing to send: the server greets first and the protocol answers with ``auth``."""
        return []

    def is_plain_update(self, data: bytes | str, binary: bool) -> bool:
        """A frame of market data only (see the module docstring).

        The actor asks only once the session is READY: the handshake always
        goes through the protocol. A frame that is not a JSON array passes
        too, and fails in the frame decoder, where it is counted.
        """
        if type(data) is bytes:
            return data.find(b"status", 0, STATUS_HEAD) < 0
        return isinstance(data, str) and data.find("status", 0, STATUS_HEAD) < 0

    def receive(self, data: bytes | str, binary: bool) -> list[Incoming]:
        """Feed one frame to the protocol and translate what it says."""
        return _translate(self.protocol.receive(data))

    def subscribe(self, topics: Sequence[str]) -> list[Incoming]:
        """Queue a subscription; topics the protocol settles locally come back at once."""
        return _settled_now(self.protocol.subscribe(topics))

    def unsubscribe(self, topics: Sequence[str]) -> list[Incoming]:
        """Queue an unsubscription; local answers come back at once."""
        return _settled_now(self.protocol.unsubscribe(topics))

    def expire_subscriptions(self) -> list[Incoming]:
        """The request in flight got no (complete) answer in time."""
        return _translate(self.protocol.expire_inflight())

    def data_to_send(self) -> list[bytes | str]:
        """Actions to send (the first holds the key: never log them)."""
        return list(self.protocol.data_to_send())

    def connection_lost(self) -> list[Incoming]:
        """Settle every request as unanswered."""
        return _translate(self.protocol.close())


def _result(request: Request) -> SubscriptionResult:
    return SubscriptionResult(
        request.op,
        acked=tuple(sorted(request.acked)),
        refused=dict(request.refused),
        unanswered=request.unanswered,
    )


def _settled_now(requests: Iterable[Request]) -> list[Incoming]:
    return [_result(r) for r in requests if r.done]


def _translate(events: Iterable[ClientEvent]) -> list[Incoming]:
    out: list[Incoming] = []
    for event in events:
        if isinstance(event, Data):
            out.append(Update(event.frame))
        elif isinstance(event, RequestDone):
            out.append(_result(event.request))
        elif isinstance(event, AuthSucceeded):
            out.append(Ready("authenticated"))
        elif isinstance(event, AuthFailed):
            out.append(AuthRejected(event.message))
        elif isinstance(event, DisconnectNotice):
            reconnect = _RECONNECT.get(event.status, Reconnect.BACKOFF)
            out.append(Disconnect(event.status, event.message, reconnect))
        elif isinstance(event, StatusNotice) and event.status == Status.AUTH_TIMEOUT:
            out.append(Disconnect(event.status, event.message, Reconnect.BACKOFF))
        elif isinstance(event, StatusNotice | Connected):
            status = event.status if isinstance(event, StatusNotice) else Status.CONNECTED
            out.append(System(status, event.message))
        elif isinstance(event, MalformedFrame):
            out.append(Unknown(event.preview))
    return out
