"""JSON-RPC 2.0 over WebSocket as a transport handler.

Requests carry an ``id`` and are answered by a response with the same id
(``result`` or ``error``); notifications (a ``method`` and no ``id``) are
the updates; subscribing is a request to a configurable method. Servers
that ping with a request (``{"method": "ping", "id": ...}``) are answered,
and a configurable method asks us to reconnect. A batch (a JSON array of
messages) is taken message by message.

See :class:`JsonRpcSpec` for what can be configured; the per-connection
state is kept by :class:`~massivekit.transport.session.JsonSession`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from massivekit.transport.handler import Disconnect, MessageKind, ProtocolHandler, Reconnect

__all__ = ["AUTH_ID", "JsonRpcHandler", "JsonRpcSpec"]

AUTH_ID: Final = "auth"
"""The id of the auth request, so that its answer is told from the others."""


@dataclass(frozen=True, slots=True)
class JsonRpcSpec:
    """The methods and parameter shapes of a JSON-RPC 2.0 API.

    Attributes:
        subscribe_method: the method that subscribes topics.
        unsubscribe_method: the method that unsubscribes them.
        topics_param: the parameter listing the topics (``None``: the
            params are the list itself).
        notification_topic: the key of a notification's params naming its
            topic (``None``: the method name is the topic).
        notification_data: the key of the params holding the payload
            (``None``: the whole params).
        auth_method: the method authenticating the session (``None``: no auth).
        auth_params: its parameters (may hold a secret: never logged).
        ping_method: a method to ping with (``None``: WebSocket pings).
        server_ping_method: the method of the server's ping requests, answered
            with ``{"result": "pong"}``.
        reconnect_method: the method of a notification asking us to reconnect.
    """

    subscribe_method: str = "subscribe"
    unsubscribe_method: str = "unsubscribe"
    topics_param: str | None = "channels"
    notification_topic: str | None = "channel"
    notification_data: str | None = "data"
    auth_method: str | None = None
    auth_params: Any = None
    ping_method: str | None = None
    server_ping_method: str | None = "ping"
    reconnect_method: str | None = None


class JsonRpcHandler(ProtocolHandler):
    """A JSON-RPC 2.0 protocol.

    Args:
        spec: the methods and parameter shapes.
    """

    def __init__(self, spec: JsonRpcSpec | None = None) -> None:
        self.spec = spec or JsonRpcSpec()

    def __repr__(self) -> str:
        return f"JsonRpcHandler(subscribe={self.spec.subscribe_method!r})"

    def auth_message(self) -> Any | None:
        """A request to ``auth_method``, if configured."""
        if self.spec.auth_method is None:
            return None
        return _request(self.spec.auth_method, self.spec.auth_params, AUTH_ID)

    def auth_result(self, message: Any) -> bool | None:
        """The answer to the auth request: success unless it is an error."""
        if not isinstance(message, dict) or message.get("id") != AUTH_ID:
            return None
        return message.get("error") is None

    def classify(self, message: Any) -> MessageKind:
        """Responses have an id and a result or error; notifications a method and no id."""
        if not isinstance(message, dict):
            return MessageKind.UNKNOWN
        if "id" in message and ("result" in message or "error" in message):
            return MessageKind.RESPONSE
        if "method" in message and message.get("id") is None:
            return MessageKind.UPDATE
        return MessageKind.UNKNOWN

    def request_id(self, message: Any) -> Any:
        """The id of a response."""
        return message.get("id") if isinstance(message, dict) else None

    def topic(self, message: Any) -> str | None:
        """The topic of a notification (a params key, or the method)."""
        key = self.spec.notification_topic
        params = message.get("params")
        if key is not None and isinstance(params, dict) and key in params:
            return str(params[key])
        method = message.get("method")
        return None if method is None else str(method)

    def update_payload(self, message: Any) -> Any:
        """A notification's params (or the configured key of them)."""
        params = message.get("params")
        key = self.spec.notification_data
        if key is not None and isinstance(params, dict) and key in params:
            return params[key]
        return params

    def result(self, message: Any) -> tuple[Any, Any]:
        """``(result, error)``."""
        return message.get("result"), message.get("error")

    def build_subscribe(self, topics: Sequence[str], request_id: int) -> Any:
        """A request to ``subscribe_method``."""
        return _request(self.spec.subscribe_method, self._topics(topics), request_id)

    def build_unsubscribe(self, topics: Sequence[str], request_id: int) -> Any:
        """A request to ``unsubscribe_method``."""
        return _request(self.spec.unsubscribe_method, self._topics(topics), request_id)

    def _topics(self, topics: Sequence[str]) -> Any:
        key = self.spec.topics_param
        return list(topics) if key is None else {key: list(topics)}

    def build_request(self, method: str, params: Any, request_id: int) -> Any:
        """``{"jsonrpc": "2.0", "id": n, "method": ..., "params": ...}``."""
        return _request(method, params, request_id)

    def build_ping(self, request_id: int) -> Any | None:
        """A request to ``ping_method``, if configured (its response is the pong)."""
        method = self.spec.ping_method
        return None if method is None else _request(method, None, request_id)

    def is_ping(self, message: Any) -> bool:
        """A request from the server to ``server_ping_method``."""
        method = self.spec.server_ping_method
        return (
            method is not None
            and isinstance(message, dict)
            and message.get("method") == method
            and message.get("id") is not None
        )

    def build_pong(self, ping: Any) -> Any | None:
        """The response to a server ping."""
        return {"jsonrpc": "2.0", "id": ping.get("id"), "result": "pong"}

    def subscription_refusal(self, result: Any, error: Any) -> str | None:
        """The error's message, if the subscribe request failed."""
        if error is None:
            return None
        if isinstance(error, dict):
            return str(error.get("message", error))
        return str(error)

    def disconnect(self, message: Any) -> Disconnect | None:
        """A notification to ``reconnect_method``: reconnect at once."""
        method = self.spec.reconnect_method
        if method is None or not isinstance(message, dict) or message.get("method") != method:
            return None
        return Disconnect("reconnect", str(message.get("params") or ""), Reconnect.NOW)


def _request(method: str, params: Any, request_id: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message
