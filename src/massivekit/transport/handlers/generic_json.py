"""A configurable handler for the common shape of JSON WebSocket APIs.

Many exchange and data APIs speak a variation of one idea: every message
is a JSON object whose ``op`` (or ``type``, ``event``, ``action``...) says
what it is; requests carry an ``id`` echoed by their answer; updates carry
a ``topic`` (or ``channel``, ``stream``...); subscribe messages list their
topics in ``args`` (or ``params``, ``channels``...). :class:`JsonSpec` names
those fields and operations, and :class:`GenericJsonHandler` speaks the
protocol they describe. Binary frames may be compressed (``zlib``/``gzip``).

Everything is a pure function of one message; the per-connection state
(request ids, which request subscribed which topics, the auth exchange) is
kept by :class:`~massivekit.transport.session.JsonSession`.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from massivekit.transport.handler import Disconnect, MessageKind, ProtocolHandler, Reconnect

__all__ = ["GenericJsonHandler", "JsonSpec"]


@dataclass(frozen=True, slots=True)
class JsonSpec:
    """Field names and operations of a JSON protocol.

    Attributes:
        op: the field naming a message's operation or type.
        id: the request id field, echoed by answers.
        topic: the field naming an update's topic.
        topics: the field listing the topics of a subscribe/unsubscribe message.
        data: the field holding an update's payload (``None``: the whole message).
        params: the field holding a request's parameters.
        result: the field of a successful answer.
        error: the field of a failed answer.
        success: a boolean field some answers carry instead of ``error``.
        subscribe_op: the operation of subscribe messages.
        unsubscribe_op: the operation of unsubscribe messages.
        acknowledges: the server answers subscribe messages (by id).
        auth: the auth message (``None``: no auth).
        auth_op: the operation of the auth answer.
        ping_op: our protocol ping's operation (``None``: WebSocket pings).
        pong_op: the operation of pongs, ours and the server's.
        server_ping_op: the operation of the server's pings (answered with ``pong_op``).
        reconnect_op: the operation of a "reconnect now" message.
        system_ops: operations that are informational notices.
        compression: how binary frames are compressed, if at all.
    """

    op: str = "op"
    id: str = "id"
    topic: str = "topic"
    topics: str = "args"
    data: str | None = None
    params: str = "params"
    result: str = "result"
    error: str = "error"
    success: str = "success"
    subscribe_op: str = "subscribe"
    unsubscribe_op: str = "unsubscribe"
    acknowledges: bool = True
    auth: Mapping[str, Any] | None = None
    auth_op: str = "auth"
    ping_op: str | None = "ping"
    pong_op: str = "pong"
    server_ping_op: str | None = "ping"
    reconnect_op: str | None = "reconnect"
    system_ops: frozenset[str] = field(default_factory=lambda: frozenset({"info", "welcome"}))
    compression: Literal["zlib", "gzip"] | None = None


class GenericJsonHandler(ProtocolHandler):
    """A JSON protocol described by a :class:`JsonSpec`.

    Args:
        spec: the field names and operations (the defaults fit ``op``/``id``/
            ``topic``/``args`` protocols).
    """

    def __init__(self, spec: JsonSpec | None = None) -> None:
        self.spec = spec or JsonSpec()

    def __repr__(self) -> str:
        return f"GenericJsonHandler(op={self.spec.op!r}, topic={self.spec.topic!r})"

    # -- connect and auth -------------------------------------------------------------------

    def auth_message(self) -> Any | None:
        """The configured auth message (it may hold a secret: never logged)."""
        return None if self.spec.auth is None else dict(self.spec.auth)

    def auth_result(self, message: Any) -> bool | None:
        """An answer whose operation is ``auth_op``: success unless it carries an error."""
        if not isinstance(message, dict) or message.get(self.spec.op) != self.spec.auth_op:
            return None
        return self._refusal(message) is None

    # -- decoding and classifying ------------------------------------------------------------

    def decode_binary(self, data: bytes) -> bytes | str:
        """Decompress a binary frame as configured."""
        if self.spec.compression == "zlib":
            return zlib.decompress(data)
        if self.spec.compression == "gzip":
            return gzip.decompress(data)
        return data

    def classify(self, message: Any) -> MessageKind:
        """RESPONSE if it echoes an id, UPDATE if it has a topic, SYSTEM for notices."""
        spec = self.spec
        if not isinstance(message, dict):
            return MessageKind.UNKNOWN
        if message.get(spec.id) is not None and (
            spec.result in message or spec.error in message or spec.success in message
        ):
            return MessageKind.RESPONSE
        if spec.topic in message:
            return MessageKind.UPDATE
        if message.get(spec.op) in spec.system_ops:
            return MessageKind.SYSTEM
        return MessageKind.UNKNOWN

    def request_id(self, message: Any) -> Any:
        """The id an answer echoes."""
        return message.get(self.spec.id) if isinstance(message, dict) else None

    def topic(self, message: Any) -> str | None:
        """The topic of an update."""
        value = message.get(self.spec.topic)
        return None if value is None else str(value)

    def update_payload(self, message: Any) -> Any:
        """The configured data field of an update, or the whole message."""
        return message if self.spec.data is None else message.get(self.spec.data)

    def result(self, message: Any) -> tuple[Any, Any]:
        """``(result, error)`` of an answer."""
        return message.get(self.spec.result), self._refusal(message)

    def _refusal(self, message: Mapping[str, Any]) -> Any:
        error = message.get(self.spec.error)
        if error is None and message.get(self.spec.success) is False:
            return "refused"
        return error

    # -- building messages ---------------------------------------------------------------------

    def build_subscribe(self, topics: Sequence[str], request_id: int) -> Any:
        """``{op: subscribe_op, topics: [...], id: n}``."""
        return self._change(self.spec.subscribe_op, topics, request_id)

    def build_unsubscribe(self, topics: Sequence[str], request_id: int) -> Any:
        """``{op: unsubscribe_op, topics: [...], id: n}``."""
        return self._change(self.spec.unsubscribe_op, topics, request_id)

    def _change(self, op: str, topics: Sequence[str], request_id: int) -> dict[str, Any]:
        spec = self.spec
        return {spec.op: op, spec.topics: list(topics), spec.id: request_id}

    def build_request(self, method: str, params: Any, request_id: int) -> Any:
        """``{op: method, params: ..., id: n}``."""
        spec = self.spec
        message: dict[str, Any] = {spec.op: method, spec.id: request_id}
        if params is not None:
            message[spec.params] = params
        return message

    def build_ping(self, request_id: int) -> Any | None:
        """``{op: ping_op}`` (answered by ``pong_op``), if configured."""
        return None if self.spec.ping_op is None else {self.spec.op: self.spec.ping_op}

    def build_pong(self, ping: Any) -> Any | None:
        """``{op: pong_op}``, echoing the ping's id if it had one."""
        pong: dict[str, Any] = {self.spec.op: self.spec.pong_op}
        if isinstance(ping, dict) and self.spec.id in ping:
            pong[self.spec.id] = ping[self.spec.id]
        return pong

    # -- recognising control messages --------------------------------------------------------

    def is_ping(self, message: Any) -> bool:
        """A message whose operation is ``server_ping_op``."""
        op = self.spec.server_ping_op
        return op is not None and isinstance(message, dict) and message.get(self.spec.op) == op

    def is_pong(self, message: Any) -> bool:
        """A message whose operation is ``pong_op``."""
        return isinstance(message, dict) and message.get(self.spec.op) == self.spec.pong_op

    def acknowledges(self) -> bool:
        """Whether subscribe messages get answers."""
        return self.spec.acknowledges

    def subscription_refusal(self, result: Any, error: Any) -> str | None:
        """The error of a subscribe answer, as text."""
        return None if error is None else str(error)

    def disconnect(self, message: Any) -> Disconnect | None:
        """``reconnect_op``: reconnect at once."""
        op = self.spec.reconnect_op
        if op is None or not isinstance(message, dict) or message.get(self.spec.op) != op:
            return None
        return Disconnect("reconnect", str(message.get("message", "")), Reconnect.NOW)
