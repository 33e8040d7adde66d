"""Timeouts and policies of a :class:`~massivekit.transport.connection.Connection`.

Frozen values, like :mod:`massivekit.config`: derive a changed copy with
:func:`dataclasses.replace`. Every field has a safe default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.socket import DEFAULT_MAX_MESSAGE

__all__ = ["ConnectionConfig", "Heartbeat"]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Liveness probing of a READY session.

    Attributes:
        interval: seconds between pings (``None``: no pings).
        timeout: seconds a pong may take before the session is declared dead.
        protocol: ping with the protocol's own message when it has one,
            rather than a WebSocket ping.
    """

    interval: float | None = 20.0
    timeout: float = 10.0
    protocol: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Timeouts and policies of a :class:`Connection` (every field has a safe default).

    Attributes:
        connect_timeout: seconds for TCP, TLS and the upgrade.
        auth_timeout: seconds from open to READY.
        ack_timeout: seconds without an answer to a subscribe request before
            its topics count as unanswered.
        request_timeout: default seconds a :meth:`Connection.request` may take.
        close_timeout: seconds a graceful close may take.
        heartbeat: pings and their pong deadline.
        silence_timeout: no message for this long ends the session (``None``: off).
        backoff: reconnect delays and the attempt cap.
        later_delay: the pause after a ``Reconnect.LATER`` notice (Massive's
            ``max_connections``): long, so as not to fight the other holder.
        raise_on_later: end the connection with the notice's error instead.
        max_pending: requests outstanding plus queued while disconnected.
        batch_size: topics per subscribe message when resubscribing.
        max_message_bytes: a larger message fails the session.
        headers: extra headers of the WebSocket upgrade.
    """

    connect_timeout: float = 10.0
    auth_timeout: float = 10.0
    ack_timeout: float = 10.0
    request_timeout: float = 10.0
    close_timeout: float = 5.0
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    silence_timeout: float | None = 60.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    later_delay: float = 60.0
    raise_on_later: bool = False
    max_pending: int = 1000
    batch_size: int = 500
    max_message_bytes: int = DEFAULT_MAX_MESSAGE
    headers: Mapping[str, str] = field(default_factory=dict)
