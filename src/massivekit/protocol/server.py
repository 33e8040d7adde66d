"""The server side of the Massive WebSocket protocol, without I/O.

One :class:`ServerProtocol` per downstream session. Bytes of client actions
go in through :meth:`ServerProtocol.receive`; what the I/O layer must do
comes out as :class:`ServerEvent` values, and the frames to send wait in
:meth:`ServerProtocol.data_to_send`. The mock server and the proxy's
downstream side both drive it, so both answer exactly as Massive does:

* on connect: ``connected``; on a good key ``auth_success``; on a bad one
  ``auth_failed`` and the TCP connection is dropped without a close frame;
* any action before auth: ``auth_required``;
* one ``subscribed to: X`` ack per new topic; a refused topic answers
  ``not authorized`` (naming no topic); an unknown prefix, a malformed topic
  and a repeated subscription get no answer at all;
* options quotes/FMV: no wildcard, at most 1,000 contracts per connection.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import msgspec

from massivekit.config import Market
from massivekit.protocol.status import (
    CLOSE_POLICY_VIOLATION,
    MSG_AUTH_FAILED,
    MSG_AUTH_REQUIRED,
    MSG_AUTH_TIMEOUT,
    MSG_AUTHENTICATED,
    MSG_CONNECTED,
    MSG_FORCE_DISCONNECT,
    MSG_MAX_CONNECTIONS,
    MSG_NOT_AUTHORIZED,
    MSG_SLOW_CONSUMER,
    Status,
    ack_message,
    status_frame,
    unack_message,
)
from massivekit.protocol.topics import (
    MAX_OPTION_CONTRACTS,
    check_topic,
    explicit_only,
    is_wildcard,
    prefix_of,
    split_params,
)

MAX_ACTION_BYTES: Final = 64 * 1024
CLOSE_NORMAL: Final = 1000


@dataclass(frozen=True, slots=True)
class AuthGrant:
    """A key was accepted.

    Args:
        principal: a name for the session that is safe to log (never the key).
        permits: which topics the key may subscribe; ``None`` allows all.
    """

    principal: str
    permits: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class AuthDenial:
    """A key was refused; ``message`` is what the client is told."""

    message: str = MSG_AUTH_FAILED


Authenticator = Callable[[str, Market], AuthGrant | AuthDenial]
"""Decides a key for a cluster: ``(key, market) -> AuthGrant | AuthDenial``."""


class ServerState(enum.Enum):
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


class ServerEvent:
    """Base of what a session asks its I/O layer to know or do."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Authenticated(ServerEvent):
    principal: str


@dataclass(frozen=True, slots=True)
class AuthRejected(ServerEvent):
    message: str


@dataclass(frozen=True, slots=True)
class TopicsAdded(ServerEvent):
    """Topics now held by the session (already acked)."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TopicsRemoved(ServerEvent):
    """Topics the session gave up (already acked)."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TopicsIgnored(ServerEvent):
    """Topics the server answers with silence (unknown prefix, malformed, repeated)."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TopicsRefused(ServerEvent):
    """Topics answered with an ``error`` status."""

    topics: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class BadAction(ServerEvent):
    """The client sent something that is not a valid action; it was told so."""

    reason: str


@dataclass(frozen=True, slots=True)
class DropConnection(ServerEvent):
    """Cut the TCP connection without a close frame (as Massive does on a bad key)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CloseConnection(ServerEvent):
    """Send a close frame with ``code`` once the queued frames are out."""

    code: int
    reason: str


class _Action(msgspec.Struct, frozen=True):
    action: str
    params: str = ""


_decode_action = msgspec.json.Decoder(_Action).decode

_DISCONNECT_MESSAGES: Final = {
    Status.MAX_CONNECTIONS: (MSG_MAX_CONNECTIONS, CLOSE_POLICY_VIOLATION),
    Status.SLOW_CONSUMER: (MSG_SLOW_CONSUMER, CLOSE_POLICY_VIOLATION),
    Status.FORCE_DISCONNECT: (MSG_FORCE_DISCONNECT, CLOSE_NORMAL),
}


class ServerProtocol:
    """One downstream session of a Massive-compatible server.

    Args:
        market: the cluster this session serves.
        authenticator: decides the key of the ``auth`` action.
        max_action_bytes: a larger client message is refused with an error.
    """

    def __init__(
        self,
        market: Market,
        authenticator: Authenticator,
        *,
        max_action_bytes: int = MAX_ACTION_BYTES,
    ) -> None:
        self.market = market
        self.state = ServerState.AUTHENTICATING
        self.principal: str | None = None
        self._authenticator = authenticator
        self._max_action_bytes = max_action_bytes
        self._permits: Callable[[str], bool] | None = None
        self._topics: set[str] = set()
        self._wildcards: set[str] = set()
        self._explicit_contracts = 0
        self._outgoing: list[bytes] = [status_frame((Status.CONNECTED, MSG_CONNECTED))]

    @property
    def topics(self) -> frozenset[str]:
        """The topics this session holds."""
        return frozenset(self._topics)

    def wants(self, ev: str, instrument: str | None) -> bool:
        """Whether an event of kind ``ev`` for ``instrument`` goes to this session."""
        if ev in self._wildcards:
            return True
        return instrument is not None and f"{ev}.{instrument}" in self._topics

    def holds_wildcards(self, prefixes: Iterable[str]) -> bool:
        """Whether the session holds ``P.*`` for every prefix ``P`` given."""
        return self._wildcards.issuperset(prefixes)

    def wants_topic(self, topic: str) -> bool:
        """Whether events of ``topic`` (``EV.INSTRUMENT``) go to this session."""
        return topic in self._topics or topic.partition(".")[0] in self._wildcards

    def data_to_send(self) -> list[bytes]:
        """Frames queued for the client, oldest first; the queue is emptied."""
        frames, self._outgoing = self._outgoing, []
        return frames

    def receive(self, data: str | bytes) -> list[ServerEvent]:
        """Take one client message (text or binary frame)."""
        if self.state is ServerState.CLOSED:
            return []
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "replace"))
        if size > self._max_action_bytes:
            return self._bad(f"message of {size} bytes exceeds {self._max_action_bytes}")
        try:
            action = _decode_action(data)
        except (msgspec.DecodeError, UnicodeError):
            return self._bad('invalid message: expected {"action": ..., "params": ...}')
        if action.action == "auth":
            return self._authenticate(action.params)
        if action.action not in ("subscribe", "unsubscribe"):
            return self._bad(f"unknown action {action.action[:40]!r}")
        if self.state is not ServerState.READY:
            self._send((Status.AUTH_REQUIRED, MSG_AUTH_REQUIRED))
            return [BadAction(f"{action.action} before auth")]
        topics = split_params(action.params)
        if action.action == "subscribe":
            return self._subscribe(topics)
        return self._unsubscribe(topics)

    def auth_timed_out(self) -> list[ServerEvent]:
        """The I/O layer's auth timer fired: tell the client, then close."""
        if self.state is not ServerState.AUTHENTICATING:
            return []
        self.state = ServerState.CLOSED
        self._send((Status.AUTH_TIMEOUT, MSG_AUTH_TIMEOUT))
        return [CloseConnection(CLOSE_POLICY_VIOLATION, Status.AUTH_TIMEOUT)]

    def disconnect(self, status: Status, message: str | None = None) -> list[ServerEvent]:
        """End the session with a disconnect status (``max_connections``, ...).

        Raises:
            ValueError: ``status`` is not a disconnect status.
        """
        if status not in _DISCONNECT_MESSAGES:
            raise ValueError(f"{status} is not a disconnect status")
        if self.state is ServerState.CLOSED:
            return []
        self.state = ServerState.CLOSED
        default, code = _DISCONNECT_MESSAGES[status]
        self._send((status, message or default))
        return [CloseConnection(code, status)]

    def _authenticate(self, key: str) -> list[ServerEvent]:
        if self.state is ServerState.READY:
            return self._bad("already authenticated")
        decision = self._authenticator(key, self.market)
        if isinstance(decision, AuthDenial):
            self.state = ServerState.CLOSED
            self._send((Status.AUTH_FAILED, decision.message))
            return [AuthRejected(decision.message), DropConnection(Status.AUTH_FAILED)]
        self.state = ServerState.READY
        self.principal = decision.principal
        self._permits = decision.permits
        self._send((Status.AUTH_SUCCESS, MSG_AUTHENTICATED))
        return [Authenticated(decision.principal)]

    def _subscribe(self, topics: Iterable[str]) -> list[ServerEvent]:
        added: list[str] = []
        ignored: list[str] = []
        refused: dict[str, list[str]] = {}
        answers: list[tuple[str, str]] = []
        for topic in topics:
            verdict = self._verdict(topic)
            if verdict is None:
                self._hold(topic)
                added.append(topic)
                answers.append((Status.SUCCESS, ack_message(topic)))
            elif verdict == "":
                ignored.append(topic)
            else:
                refused.setdefault(verdict, []).append(topic)
                answers.append((Status.ERROR, verdict))
        # Answers go in topic order: refusals name no topic, so a client can
        # only pair them with its unacked topics by position.
        self._send(*answers)
        events: list[ServerEvent] = []
        if added:
            events.append(TopicsAdded(tuple(added)))
        if ignored:
            events.append(TopicsIgnored(tuple(ignored)))
        events.extend(TopicsRefused(tuple(g), m) for m, g in refused.items())
        return events

    def _verdict(self, topic: str) -> str | None:
        """``None`` to accept, ``""`` to ignore silently, else the error message."""
        if topic in self._topics:
            return ""  # a repeated subscription gets no answer
        problem = check_topic(self.market, topic)
        if problem is not None:
            return "" if problem.silent else f"{problem.value}: {topic}"
        if self._permits is not None and not self._permits(topic):
            return MSG_NOT_AUTHORIZED
        if (
            explicit_only(self.market, prefix_of(topic))
            and self._explicit_contracts >= MAX_OPTION_CONTRACTS
        ):
            return f"at most {MAX_OPTION_CONTRACTS} contracts per connection"
        return None

    def _hold(self, topic: str) -> None:
        self._topics.add(topic)
        prefix = prefix_of(topic)
        if is_wildcard(topic):
            self._wildcards.add(prefix)
        elif explicit_only(self.market, prefix):
            self._explicit_contracts += 1

    def revoke(self, refused: Mapping[str, str]) -> list[ServerEvent]:
        """Take back topics already acked: the upstream refused them after the ack.

        A proxy acks at once, as Massive does, and learns later whether its
        own upstream accepts. Each revoked topic is told with an ``error``
        status naming it (``upstream refused T.X: not authorized``; Massive's
        own refusals name no topic, but a late one could not be paired
        otherwise) and leaves the session's set, so asking again is answered.

        Args:
            refused: topic -> the upstream's reason; topics not held are ignored.

        Returns:
            ``[TopicsRemoved(...)]`` with the topics taken back, or ``[]``.
        """
        removed = self._drop(refused)
        self._send(*[(Status.ERROR, f"upstream refused {t}: {refused[t]}") for t in removed])
        return [TopicsRemoved(tuple(removed))] if removed else []

    def _unsubscribe(self, topics: Iterable[str]) -> list[ServerEvent]:
        removed = self._drop(topics)
        self._send(*[(Status.SUCCESS, unack_message(t)) for t in removed])
        return [TopicsRemoved(tuple(removed))] if removed else []

    def _drop(self, topics: Iterable[str]) -> list[str]:
        removed: list[str] = []
        for topic in topics:
            if topic not in self._topics:
                continue
            self._topics.discard(topic)
            prefix = prefix_of(topic)
            if is_wildcard(topic):
                self._wildcards.discard(prefix)
            elif explicit_only(self.market, prefix):
                self._explicit_contracts -= 1
            removed.append(topic)
        return removed

    def _bad(self, reason: str) -> list[ServerEvent]:
        self._send((Status.ERROR, reason))
        return [BadAction(reason)]

    def _send(self, *events: tuple[str, str]) -> None:
        if events:
            self._outgoing.append(status_frame(*events))
