"""The default per-connection driver of a :class:`~massivekit.transport.handler.ProtocolHandler`.

:class:`JsonSession` turns a handler's small pure methods into the
:class:`~massivekit.transport.handler.ProtocolSession` state machine the
connection actor drives: it numbers requests, remembers which request
subscribed which topics so that the server's answer settles them, answers
server pings, and tracks the auth exchange. No I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from massivekit.errors import DeserializeError, preview
from massivekit.transport.handler import (
    AuthRejected,
    Incoming,
    MessageKind,
    Ping,
    Pong,
    ProtocolHandler,
    ProtocolSession,
    Ready,
    Response,
    SubscriptionResult,
    System,
    Unknown,
    Update,
)


def _preview(message: Any) -> str:
    text = message if isinstance(message, str | bytes) else repr(message)
    return preview(text, 120) or ""


class JsonSession(ProtocolSession):
    """One connection of a protocol described by a :class:`ProtocolHandler`.

    Args:
        handler: the protocol's description.
    """

    def __init__(self, handler: ProtocolHandler) -> None:
        self._handler = handler
        self._outgoing: list[bytes | str] = []
        self._next_id = 0
        self._subscriptions: dict[Hashable, tuple[str, tuple[str, ...]]] = {}
        self._pings: set[Hashable] = set()
        self._ready = False

    def __repr__(self) -> str:
        state = "ready" if self._ready else "opening"
        return f"JsonSession({type(self._handler).__name__}, {state})"

    def on_open(self) -> list[Incoming]:
        """Queue the connect messages; :class:`Ready` at once when there is no auth."""
        self._queue(*self._handler.on_connect())
        if self._handler.auth_message() is None:
            self._ready = True
            return [Ready()]
        return []

    def receive(self, data: bytes | str, binary: bool) -> list[Incoming]:
        """Decode and classify one WebSocket message (see :class:`ProtocolSession`)."""
        handler = self._handler
        if binary and isinstance(data, bytes):
            data = handler.decode_binary(data)
        try:
            messages = handler.decode(data)
        except DeserializeError:
            return [Unknown(_preview(data))]
        incoming: list[Incoming] = []
        for message in messages:
            incoming.extend(self._one(message))
        return incoming

    def _one(self, message: Any) -> list[Incoming]:
        handler = self._handler
        if not self._ready:
            verdict = handler.auth_result(message)
            if verdict is not None:
                self._ready = verdict
                return [Ready()] if verdict else [AuthRejected(_preview(message))]
        if handler.is_ping(message):
            pong = handler.build_pong(message)
            if pong is not None:
                self._queue(pong)
            return [Ping()]
        if handler.is_pong(message):
            return [Pong()]
        notice = handler.disconnect(message)
        if notice is not None:
            return [notice]
        kind = handler.classify(message)
        if kind is MessageKind.UPDATE:
            return [Update(handler.update_payload(message), handler.topic(message))]
        if kind is MessageKind.RESPONSE:
            return [self._response(message)]
        if kind is MessageKind.SYSTEM:
            return [System("system", _preview(message))]
        return [Unknown(_preview(message))]

    def _response(self, message: Any) -> Incoming:
        handler = self._handler
        request_id = handler.request_id(message)
        result, error = handler.result(message)
        if request_id in self._pings:
            self._pings.discard(request_id)
            return Pong()
        settled = self._subscriptions.pop(request_id, None) if request_id is not None else None
        if settled is None:
            return Response(request_id, result, error)
        op, topics = settled
        reason = handler.subscription_refusal(result, error)
        if reason is None:
            return SubscriptionResult(op, acked=topics)
        return SubscriptionResult(op, refused=dict.fromkeys(topics, reason))

    def subscribe(self, topics: Sequence[str]) -> list[Incoming]:
        """Queue a subscribe message; settled by the response to its id."""
        return self._change("subscribe", topics)

    def unsubscribe(self, topics: Sequence[str]) -> list[Incoming]:
        """Queue an unsubscribe message; settled by the response to its id."""
        return self._change("unsubscribe", topics)

    def _change(self, op: str, topics: Sequence[str]) -> list[Incoming]:
        if not topics:
            return []
        handler = self._handler
        request_id = self._new_id()
        build = handler.build_subscribe if op == "subscribe" else handler.build_unsubscribe
        self._queue(build(topics, request_id))
        if not handler.acknowledges():
            # The server never answers: the request is as good as acked once sent.
            return [SubscriptionResult(op, acked=tuple(topics))]
        self._subscriptions[request_id] = (op, tuple(topics))
        return []

    def expire_subscriptions(self) -> list[Incoming]:
        """Settle every unanswered subscribe/unsubscribe request."""
        pending, self._subscriptions = self._subscriptions, {}
        return [SubscriptionResult(op, unanswered=topics) for op, topics in pending.values()]

    def request(self, method: str, params: Any) -> Hashable:
        """Queue a request; returns its id."""
        request_id = self._new_id()
        self._queue(self._handler.build_request(method, params, request_id))
        return request_id

    def ping(self) -> bool:
        """Queue the handler's protocol ping, if it has one."""
        request_id = self._new_id()
        message = self._handler.build_ping(request_id)
        if message is None:
            return False
        self._pings.add(request_id)
        self._queue(message)
        return True

    def data_to_send(self) -> list[bytes | str]:
        """Encoded messages to send, oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def connection_lost(self) -> list[Incoming]:
        """Settle every outstanding subscription request as unanswered."""
        self._pings.clear()
        return self.expire_subscriptions()

    @property
    def outstanding(self) -> int:
        """Subscription requests still awaiting an answer."""
        return len(self._subscriptions)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _queue(self, *messages: Any) -> None:
        encode = self._handler.encode
        self._outgoing.extend(encode(m) for m in messages)
