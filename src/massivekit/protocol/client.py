"""The client side of the Massive WebSocket protocol, without I/O.

One :class:`ClientProtocol` per connection: frames go in through
:meth:`ClientProtocol.receive`, typed :class:`ClientEvent` values come out,
and the actions to send wait in :meth:`ClientProtocol.data_to_send`.

Facts from PROTOCOL.md it acts on:

* the server greets with ``connected``; the client answers with ``auth``;
  ``auth_success`` makes the session READY; ``auth_failed`` is terminal;
* one ``subscribed to: X`` ack per topic, but a refusal (``not authorized``)
  names no topic: so only one subscribe/unsubscribe request is in flight at
  a time, and its refusals are the topics left without an ack;
* an unknown prefix and a repeated subscription get no answer, so they are
  settled here and never sent; a request the server leaves unanswered is
  settled by the I/O layer's timer through :meth:`ClientProtocol.expire_inflight`;
* ``max_connections``, ``force_disconnect`` and ``slow_consumer`` announce
  the end of the session.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import msgspec

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.protocol.status import (
    DISCONNECT_STATUSES,
    SUBSCRIBED_PREFIX,
    UNSUBSCRIBED_PREFIX,
    Status,
)
from massivekit.protocol.topics import (
    MAX_OPTION_CONTRACTS,
    check_topic,
    explicit_only,
    join_params,
    prefix_of,
)

DEFAULT_BATCH: Final = 500
"""Topics per subscribe action: large enough for few round trips, small
enough that one refusal among them is cheap to attribute."""


class ClientState(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


@dataclass(eq=False)
class Request:
    """A subscribe or unsubscribe request and, once ``done``, its outcome.

    ``acked`` holds the topics the server confirmed (or that needed no
    confirmation), ``refused`` maps each refused topic to the reason, and
    ``unanswered`` the topics the server left without a word until the
    request expired.
    """

    id: int
    op: Literal["subscribe", "unsubscribe"]
    topics: tuple[str, ...]
    acked: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    unanswered: tuple[str, ...] = ()
    done: bool = False
    _sent: tuple[str, ...] = ()
    _errors: list[str] = field(default_factory=list)

    @property
    def pending(self) -> tuple[str, ...]:
        """Sent topics not yet answered."""
        return tuple(t for t in self._sent if t not in self.acked)

    @property
    def ok(self) -> bool:
        """Done, with every topic confirmed."""
        return self.done and not self.refused and not self.unanswered


class ClientEvent:
    """Base of what the protocol tells its I/O layer."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Connected(ClientEvent):
    message: str


@dataclass(frozen=True, slots=True)
class AuthSucceeded(ClientEvent):
    pass


@dataclass(frozen=True, slots=True)
class AuthFailed(ClientEvent):
    """Terminal: the key was refused; reconnecting would not help."""

    message: str


@dataclass(frozen=True, slots=True)
class RequestDone(ClientEvent):
    request: Request


@dataclass(frozen=True, slots=True)
class DisconnectNotice(ClientEvent):
    """The server is ending the session (``max_connections``, ``slow_consumer``, ...)."""

    status: str
    message: str


@dataclass(frozen=True, slots=True)
class StatusNotice(ClientEvent):
    """Any other status: ``auth_timeout``, ``auth_required``, a stray error or ack."""

    status: str
    message: str


@dataclass(frozen=True, slots=True)
class Data(ClientEvent):
    """A frame of market events, as bytes or text exactly as received."""

    frame: bytes | str


@dataclass(frozen=True, slots=True)
class MalformedFrame(ClientEvent):
    """A frame that is not a JSON array of events; skipped, the stream goes on."""

    preview: str


class _Peek(msgspec.Struct, frozen=True):
    ev: str = ""
    status: str = ""
    message: str = ""


_split = msgspec.json.Decoder(list[msgspec.Raw]).decode
_peek = msgspec.json.Decoder(_Peek).decode
_encode = msgspec.json.Encoder().encode


class ClientProtocol:
    """One client connection to a Massive cluster.

    Args:
        api_key: the key sent in the ``auth`` action.
        market: the cluster, for topic validation.
        batch_size: the most topics in one subscribe/unsubscribe action.
    """

    def __init__(self, api_key: ApiKey, market: Market, *, batch_size: int = DEFAULT_BATCH) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.market = market
        self.state = ClientState.CONNECTING
        self.subscribed: set[str] = set()
        self._key = api_key
        self._batch_size = batch_size
        self._next_id = 0
        self._queue: deque[Request] = deque()
        self._inflight: Request | None = None
        self._outgoing: list[bytes] = []

    def __repr__(self) -> str:
        return f"ClientProtocol(market={self.market.value}, state={self.state.value})"

    @property
    def inflight(self) -> Request | None:
        """The request awaiting the server's answers, if any."""
        return self._inflight

    def data_to_send(self) -> list[bytes]:
        """Actions to send as text frames, oldest first; the queue is emptied.

        The ``auth`` action holds the key: never log these bytes.
        """
        actions, self._outgoing = self._outgoing, []
        return actions

    def subscribe(self, topics: Iterable[str]) -> list[Request]:
        """Ask for ``topics``; returns one request per batch (some may be done already).

        Raises:
            TypeError: ``topics`` is a single string rather than a collection.
        """
        return self._enqueue("subscribe", topics)

    def unsubscribe(self, topics: Iterable[str]) -> list[Request]:
        """Give up ``topics``; returns one request per batch.

        Raises:
            TypeError: ``topics`` is a single string rather than a collection.
        """
        return self._enqueue("unsubscribe", topics)

    def expire_inflight(self) -> list[ClientEvent]:
        """Settle the in-flight request: the server left its remaining topics unanswered."""
        request = self._inflight
        if request is None:
            return []
        _settle_unanswered(request)
        return self._finish(request)

    def close(self) -> list[ClientEvent]:
        """The connection is gone: settle every request as unanswered."""
        self.state = ClientState.CLOSED
        requests = [self._inflight, *self._queue] if self._inflight else list(self._queue)
        self._inflight = None
        self._queue.clear()
        for request in requests:
            if not request._sent:  # never judged nor sent: nothing was answered
                request._sent = tuple(t for t in request.topics if t not in request.acked)
            _settle_unanswered(request)
            request.done = True
        return [RequestDone(r) for r in requests]

    def receive(self, frame: bytes | str) -> list[ClientEvent]:
        """Take one server frame."""
        head = frame[:1]
        # Data frames carry no status event: hand them on untouched.
        if head in (b"[", "[") and (
            ("status" not in frame) if isinstance(frame, str) else (b"status" not in frame)
        ):
            return [Data(frame)]
        try:
            raws = _split(frame)
            peeks = [_peek(raw) for raw in raws]
        except (msgspec.DecodeError, UnicodeError):
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            return [MalformedFrame(text[:120])]
        events: list[ClientEvent] = []
        data: list[bytes] = []
        for raw, peek in zip(raws, peeks, strict=True):
            if peek.ev == "status":
                events.extend(self._on_status(peek.status, peek.message))
            else:
                data.append(bytes(raw))
        if data:
            events.append(Data(b"[" + b",".join(data) + b"]"))
        return events

    def _enqueue(
        self, op: Literal["subscribe", "unsubscribe"], topics: Iterable[str]
    ) -> list[Request]:
        if isinstance(topics, str | bytes):
            raise TypeError("pass a collection of topics, not a single string")
        unique = list(dict.fromkeys(topics))
        size = self._batch_size
        requests = []
        for start in range(0, len(unique), size):
            self._next_id += 1
            requests.append(Request(self._next_id, op, tuple(unique[start : start + size])))
        if self.state is ClientState.CLOSED:
            for request in requests:
                request.unanswered = request.topics
                request.done = True
            return requests
        self._queue.extend(requests)
        self._pump()
        return requests

    def _pump(self) -> list[ClientEvent]:
        """Send the next request; settle at once those that need no answer.

        Local answers are decided here, when the request goes in flight, not
        when it was queued: only then is ``subscribed`` current for it.
        """
        done: list[ClientEvent] = []
        while self.state is ClientState.READY and self._inflight is None and self._queue:
            request = self._queue.popleft()
            self._settle_locally(request)
            if not request._sent:
                request.done = True
                done.append(RequestDone(request))
                continue
            self._inflight = request
            action = {"action": request.op, "params": join_params(request._sent)}
            self._outgoing.append(_encode(action))
        return done

    def _settle_locally(self, request: Request) -> None:
        to_send: list[str] = []
        room = MAX_OPTION_CONTRACTS - sum(
            1 for t in self.subscribed if explicit_only(self.market, prefix_of(t))
        )
        for topic in request.topics:
            reason = self._local_answer(request.op, topic)
            if (
                reason is None
                and request.op == "subscribe"
                and explicit_only(self.market, prefix_of(topic))
            ):
                room -= 1
                if room < 0:
                    reason = f"at most {MAX_OPTION_CONTRACTS} contracts per connection"
            if reason is None:
                to_send.append(topic)
            elif reason == "":
                request.acked.add(topic)
            else:
                request.refused[topic] = reason
        request._sent = tuple(to_send)

    def _local_answer(self, op: str, topic: str) -> str | None:
        """``None`` to send, ``""`` to count as acked without asking, else a refusal."""
        if op == "unsubscribe":
            return None if topic in self.subscribed else ""
        if topic in self.subscribed:
            return ""  # the server would not answer a repeated subscription
        problem = check_topic(self.market, topic)
        return None if problem is None else f"{problem.value}: {topic}"

    def _on_status(self, status: str, message: str) -> list[ClientEvent]:
        if status == Status.CONNECTED:
            return self._on_connected(message)
        if status == Status.AUTH_SUCCESS:
            if self.state is not ClientState.AUTHENTICATING:
                return [StatusNotice(status, message)]
            self.state = ClientState.READY
            return [AuthSucceeded(), *self._pump()]
        if status == Status.AUTH_FAILED:
            self.state = ClientState.CLOSED
            return [AuthFailed(message), *self.close()]
        if status in DISCONNECT_STATUSES:
            self.state = ClientState.CLOSED
            return [DisconnectNotice(status, message)]
        if status == Status.AUTH_TIMEOUT:
            self.state = ClientState.CLOSED
        if status == Status.SUCCESS and self._settle_ack(message):
            return self._maybe_finish()
        if status == Status.ERROR and self._inflight is not None:
            self._inflight._errors.append(message)
            return self._maybe_finish()
        return [StatusNotice(status, message)]

    def _on_connected(self, message: str) -> list[ClientEvent]:
        if self.state is ClientState.CONNECTING:
            self.state = ClientState.AUTHENTICATING
            self._outgoing.append(_encode({"action": "auth", "params": self._key.reveal()}))
        return [Connected(message)]

    def _settle_ack(self, message: str) -> bool:
        request = self._inflight
        if request is None:
            return False
        prefix = SUBSCRIBED_PREFIX if request.op == "subscribe" else UNSUBSCRIBED_PREFIX
        topic = message[len(prefix) :] if message.startswith(prefix) else None
        if topic is None or topic not in request._sent or topic in request.acked:
            return False
        request.acked.add(topic)
        if request.op == "subscribe":
            self.subscribed.add(topic)
        else:
            self.subscribed.discard(topic)
        return True

    def _maybe_finish(self) -> list[ClientEvent]:
        request = self._inflight
        assert request is not None  # only called with a request in flight
        pending = request.pending
        if len(request._errors) < len(pending):
            return []
        # Refusals name no topic: with every answer in, the unacked ones were refused.
        for topic, message in zip(pending, request._errors, strict=False):
            request.refused[topic] = message
        return self._finish(request)

    def _finish(self, request: Request) -> list[ClientEvent]:
        request.done = True
        self._inflight = None
        return [RequestDone(request), *self._pump()]


def _settle_unanswered(request: Request) -> None:
    """Errors already in refuse the first unacked topics, by position; the rest went unanswered."""
    pending = request.pending
    for topic, message in zip(pending, request._errors, strict=False):
        request.refused[topic] = message
    request.unanswered = tuple(t for t in pending if t not in request.refused)
