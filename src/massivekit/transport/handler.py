"""What a JSON-over-WebSocket protocol says, without any I/O.

Two levels, so that simple protocols are a handful of small methods and
stateful ones keep full control:

* :class:`ProtocolHandler` describes a protocol in small pure methods: what
  to send on connect, the auth message and how to tell its answer, how to
  decode and classify a message (:class:`MessageKind`), where its request id
  and topic are, how to build subscribe / unsubscribe / request / ping / pong
  messages, and how to recognise server pings, pongs, subscription answers
  and "reconnect now". :meth:`ProtocolHandler.open_session` makes the
  per-connection state machine; the default,
  :class:`~massivekit.transport.session.JsonSession`, drives those methods.
* :class:`ProtocolSession` is what the connection actor talks to, once per
  connection: bytes in (:meth:`~ProtocolSession.receive`), :class:`Incoming`
  values out, messages to send waiting in :meth:`~ProtocolSession.data_to_send`.
  The Massive handler implements it directly on the sans-I/O
  :class:`~massivekit.protocol.client.ClientProtocol`.

Nothing here touches a socket, a timer or an event loop.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from massivekit.errors import DeserializeError, ProtocolError


class MessageKind(enum.Enum):
    """What one message is, for the connection actor."""

    RESPONSE = "response"
    """The answer to a request we sent (carries its id)."""
    UPDATE = "update"
    """Data for the user (market events, a notification)."""
    SYSTEM = "system"
    """Session information: greetings, auth answers, notices."""
    CONTROL = "control"
    """Liveness and flow: pings, pongs, "reconnect now"."""
    UNKNOWN = "unknown"
    """Anything else; counted and skipped."""


class Reconnect(enum.Enum):
    """How to come back after the server ends a session."""

    NOW = "now"
    """The server asked for it: reconnect at once."""
    BACKOFF = "backoff"
    """Reconnect after the usual backoff."""
    LATER = "later"
    """Another holder of the key wants the slot: wait long, or give up (configurable)."""
    NEVER = "never"
    """Terminal: reconnecting cannot help."""


class Incoming:
    """Base of what a :class:`ProtocolSession` reports; ``kind`` classifies it."""

    __slots__ = ()
    kind: ClassVar[MessageKind] = MessageKind.UNKNOWN


@dataclass(frozen=True, slots=True)
class Update(Incoming):
    """Data for the user: ``payload`` as the protocol gives it, and its topic if known."""

    payload: Any
    topic: str | None = None
    kind = MessageKind.UPDATE


@dataclass(frozen=True, slots=True)
class Response(Incoming):
    """The answer to request ``request_id``: a ``result`` or an ``error``."""

    request_id: Hashable
    result: Any = None
    error: Any = None
    kind = MessageKind.RESPONSE


@dataclass(frozen=True, slots=True)
class SubscriptionResult(Incoming):
    """The outcome of a subscribe or unsubscribe request, topic by topic.

    ``refused`` maps each refused topic to the server's reason; ``unanswered``
    lists topics the server never answered before the request expired.
    """

    op: str
    acked: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)
    unanswered: tuple[str, ...] = ()
    kind = MessageKind.RESPONSE


@dataclass(frozen=True, slots=True)
class Ready(Incoming):
    """The session is authenticated (or needs no auth): commands may flow."""

    message: str = ""
    kind = MessageKind.SYSTEM


@dataclass(frozen=True, slots=True)
class AuthRejected(Incoming):
    """The credentials were refused: terminal."""

    message: str = ""
    kind = MessageKind.SYSTEM


@dataclass(frozen=True, slots=True)
class System(Incoming):
    """A notice worth logging but not acting on."""

    status: str
    message: str = ""
    kind = MessageKind.SYSTEM


@dataclass(frozen=True, slots=True)
class Ping(Incoming):
    """The server pinged; the session has queued the pong already."""

    kind = MessageKind.CONTROL


@dataclass(frozen=True, slots=True)
class Pong(Incoming):
    """The answer to our protocol ping."""

    kind = MessageKind.CONTROL


@dataclass(frozen=True, slots=True)
class Disconnect(Incoming):
    """The server is ending the session (or asks us to reconnect).

    Args:
        reason: a short code (``max_connections``, ``reconnect``...).
        message: the server's words.
        reconnect: how to come back.
    """

    reason: str
    message: str = ""
    reconnect: Reconnect = Reconnect.BACKOFF
    kind = MessageKind.CONTROL


@dataclass(frozen=True, slots=True)
class Unknown(Incoming):
    """A message the protocol could not place; ``preview`` is a short excerpt."""

    preview: str
    kind = MessageKind.UNKNOWN


class ProtocolSession(abc.ABC):
    """One connection's protocol state; the connection actor's only view of a protocol.

    Every method is synchronous and does no I/O: results come back as
    :class:`Incoming` values, messages to send wait in :meth:`data_to_send`.
    """

    @abc.abstractmethod
    def on_open(self) -> list[Incoming]:
        """The socket is open: queue what to send first (auth); :class:`Ready` if no auth."""

    @abc.abstractmethod
    def receive(self, data: bytes | str, binary: bool) -> list[Incoming]:
        """Take one WebSocket message.

        Raises:
            Nothing: a message that does not parse is reported as :class:`Unknown`.
        """

    def is_plain_update(self, data: bytes | str, binary: bool) -> bool:
        """Whether ``data`` is pure data the actor may hand on untouched (a fast path).

        Asked only while READY. When true, :meth:`receive` would have
        returned ``[Update(data)]`` and changed no state, so the actor skips it.
        """
        return False

    @abc.abstractmethod
    def subscribe(self, topics: Sequence[str]) -> list[Incoming]:
        """Queue a subscription; returns results the protocol settles locally."""

    @abc.abstractmethod
    def unsubscribe(self, topics: Sequence[str]) -> list[Incoming]:
        """Queue an unsubscription; returns results settled locally."""

    def expire_subscriptions(self) -> list[Incoming]:
        """The actor's ack timer fired: settle outstanding requests as unanswered."""
        return []

    def request(self, method: str, params: Any) -> Hashable:
        """Queue a request; returns its id (answered by a :class:`Response`).

        Raises:
            ProtocolError: the protocol has no request/response exchange.
        """
        raise ProtocolError(f"{type(self).__name__} does not support requests")

    def ping(self) -> bool:
        """Queue a protocol-level ping; ``False`` means use a WebSocket ping instead."""
        return False

    @abc.abstractmethod
    def data_to_send(self) -> list[bytes | str]:
        """Messages to send as text frames, oldest first; the queue is emptied.

        They may hold credentials: never log them.
        """

    def connection_lost(self) -> list[Incoming]:
        """The socket is gone: settle what was in flight."""
        return []


class ProtocolHandler(abc.ABC):
    """A protocol described in small pure methods.

    Override what differs; :meth:`open_session` builds the
    :class:`~massivekit.transport.session.JsonSession` that drives them.
    Messages are plain JSON values (dicts, lists, ...).
    """

    #: Messages are encoded with this (msgspec is fast and strict).
    _encoder = msgspec.json.Encoder()

    def open_session(self) -> ProtocolSession:
        """A fresh per-connection session speaking this protocol."""
        from massivekit.transport.session import JsonSession  # the default driver

        return JsonSession(self)

    # -- connect and auth ---------------------------------------------------------

    def on_connect(self) -> list[Any]:
        """Messages to send as soon as the socket opens (by default the auth message)."""
        auth = self.auth_message()
        return [] if auth is None else [auth]

    def auth_message(self) -> Any | None:
        """The auth message, or ``None`` if the protocol needs none."""
        return None

    def auth_result(self, message: Any) -> bool | None:
        """``True``/``False`` if ``message`` answers the auth, ``None`` if it does not."""
        return None

    # -- decoding and classifying -----------------------------------------------------

    def decode_binary(self, data: bytes) -> bytes | str:
        """Turn a BINARY message into JSON text (decompress it, say); identity by default."""
        return data

    def decode(self, data: bytes | str) -> list[Any]:
        """Parse one WebSocket message into protocol messages (one, unless batched).

        Raises:
            DeserializeError: the message is not JSON.
        """
        try:
            value = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise DeserializeError("message is not JSON", body=data) from exc
        return value if isinstance(value, list) else [value]

    @abc.abstractmethod
    def classify(self, message: Any) -> MessageKind:
        """What ``message`` is."""

    def request_id(self, message: Any) -> Hashable | None:
        """The request id a RESPONSE answers, if any."""
        return None

    def topic(self, message: Any) -> str | None:
        """The topic an UPDATE belongs to, if any."""
        return None

    def update_payload(self, message: Any) -> Any:
        """What of an UPDATE goes to the user (the whole message by default)."""
        return message

    def result(self, message: Any) -> tuple[Any, Any]:
        """``(result, error)`` of a RESPONSE; ``error`` is ``None`` on success."""
        return message, None

    # -- building messages --------------------------------------------------------------

    @abc.abstractmethod
    def build_subscribe(self, topics: Sequence[str], request_id: int) -> Any:
        """The message subscribing ``topics``."""

    @abc.abstractmethod
    def build_unsubscribe(self, topics: Sequence[str], request_id: int) -> Any:
        """The message unsubscribing ``topics``."""

    def build_request(self, method: str, params: Any, request_id: int) -> Any:
        """A request message.

        Raises:
            ProtocolError: the protocol has no requests.
        """
        raise ProtocolError(f"{type(self).__name__} does not support requests")

    def build_ping(self, request_id: int) -> Any | None:
        """A protocol ping, or ``None`` to rely on WebSocket pings."""
        return None

    def build_pong(self, ping: Any) -> Any | None:
        """The answer to a server ping, or ``None`` if it needs none."""
        return None

    def encode(self, message: Any) -> bytes | str:
        """Serialise a message for the wire."""
        return self._encoder.encode(message)

    # -- recognising control messages -----------------------------------------------------

    def is_ping(self, message: Any) -> bool:
        """Whether ``message`` is a server ping."""
        return False

    def is_pong(self, message: Any) -> bool:
        """Whether ``message`` answers our protocol ping (one without a request id)."""
        return False

    def acknowledges(self) -> bool:
        """Whether the server answers subscribe requests (else they count as acked at once)."""
        return True

    def subscription_refusal(self, result: Any, error: Any) -> str | None:
        """The reason a subscribe response refuses its topics, or ``None`` if it accepts."""
        return None if error is None else str(error)

    def disconnect(self, message: Any) -> Disconnect | None:
        """A "reconnect now" (or other session-ending) message, if ``message`` is one."""
        return None
