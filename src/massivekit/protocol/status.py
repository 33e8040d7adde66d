"""Massive ``status`` events: their names, their messages, and their frames.

Every server frame is a JSON array; a status event is
``{"ev":"status","status":S,"message":M}``. The server side builds them here
and the client side recognises them here, so both speak the same words.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec


class Status(enum.StrEnum):
    """The ``status`` values Massive sends (PROTOCOL.md, websocket.json)."""

    CONNECTED = "connected"
    AUTH_SUCCESS = "auth_success"
    AUTH_FAILED = "auth_failed"
    AUTH_TIMEOUT = "auth_timeout"
    AUTH_REQUIRED = "auth_required"
    SUCCESS = "success"
    ERROR = "error"
    MAX_CONNECTIONS = "max_connections"
    FORCE_DISCONNECT = "force_disconnect"
    SLOW_CONSUMER = "slow_consumer"


DISCONNECT_STATUSES: Final = frozenset(
    {Status.MAX_CONNECTIONS, Status.FORCE_DISCONNECT, Status.SLOW_CONSUMER}
)
"""Statuses after which the server ends the session."""

MSG_CONNECTED: Final = "Connected Successfully"
MSG_AUTHENTICATED: Final = "authenticated"
MSG_AUTH_FAILED: Final = "authentication failed"
MSG_AUTH_TIMEOUT: Final = "authentication timed out"
MSG_AUTH_REQUIRED: Final = "authentication required"
MSG_NOT_AUTHORIZED: Final = "not authorized"
MSG_MAX_CONNECTIONS: Final = "Maximum number of connections exceeded."
MSG_FORCE_DISCONNECT: Final = "Disconnected by the server."
MSG_SLOW_CONSUMER: Final = "Slow consumer: the connection could not keep up and was closed."
SUBSCRIBED_PREFIX: Final = "subscribed to: "
UNSUBSCRIBED_PREFIX: Final = "unsubscribed to: "

CLOSE_POLICY_VIOLATION: Final = 1008
"""The close code that follows ``max_connections``."""


class StatusMessage(msgspec.Struct, frozen=True, tag_field="ev", tag="status"):
    """One status event as it travels."""

    status: str
    message: str = ""


_encode = msgspec.json.Encoder().encode


def status_frame(*events: tuple[str, str]) -> bytes:
    """A frame of status events, each given as ``(status, message)``."""
    return _encode([StatusMessage(status=str(s), message=m) for s, m in events])


def ack_message(topic: str) -> str:
    """The message of a subscription ack."""
    return SUBSCRIBED_PREFIX + topic


def unack_message(topic: str) -> str:
    """The message of an unsubscription ack."""
    return UNSUBSCRIBED_PREFIX + topic
