"""The states of a connection, the events that announce them, and their streams.

A connection moves through explicit states::

    DISCONNECTED → CONNECTING → AUTHENTICATING → READY
                       ↑                           │ (lost)
                       └──── RECONNECTING(n) ←─────┘
    any state → CLOSING → CLOSED          (aclose(), or a terminal error)

Every change is a :class:`ConnectionEvent`, delivered to callbacks and to
any number of :class:`EventStream` async iterators. Streams are bounded
(the oldest event goes first when a reader falls far behind: events are
rare, so only a reader that stopped reading loses any) and end after
``CLOSED``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from massivekit.auth import get_logger

__all__ = ["ConnectionEvent", "ConnectionState", "EventHub", "EventStream", "Listener"]

_log = get_logger("massivekit.transport.events")


class ConnectionState(enum.Enum):
    """Where a connection stands."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    RECONNECTING = "reconnecting"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """One state change.

    Attributes:
        state: the new state.
        previous: the state left.
        attempt: for ``RECONNECTING`` and the ``CONNECTING`` that follows, the
            number of consecutive attempts since data last flowed.
        delay: for ``RECONNECTING``, seconds until the next attempt.
        reason: a short code of why the previous session ended
            (``dropped``, ``closed``, ``silence``, ``pong_timeout``,
            ``auth_timeout``, ``auth_failed``, ``max_connections``, ...).
        error: the error behind ``reason``, if any; on ``CLOSED``, the
            terminal error (``None`` after a clean ``aclose()``).
        at: ``time.time()`` of the change.
    """

    state: ConnectionState
    previous: ConnectionState
    attempt: int = 0
    delay: float | None = None
    reason: str = ""
    error: BaseException | None = None
    at: float = field(default_factory=time.time)

    def __str__(self) -> str:
        text = f"{self.previous.value} → {self.state.value}"
        if self.state is ConnectionState.RECONNECTING:
            text += f" (attempt {self.attempt}, in {self.delay or 0:.2f}s)"
        if self.reason:
            text += f": {self.reason}"
        return text


class EventStream:
    """An async iterator of :class:`ConnectionEvent`; ends after ``CLOSED``.

    Args:
        maxsize: events kept for a slow reader; the oldest go first.
    """

    def __init__(self, maxsize: int = 256) -> None:
        self._events: deque[ConnectionEvent] = deque(maxlen=maxsize)
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self.dropped = 0
        """Events lost because the reader fell more than ``maxsize`` behind."""

    def put(self, event: ConnectionEvent) -> None:
        """Append an event (never blocks); ``CLOSED`` ends the stream."""
        if self._ended:
            return
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        if event.state is ConnectionState.CLOSED:
            self._ended = True
        self._wake()

    def close(self) -> None:
        """End the stream (the reader sees what is left, then stops)."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ConnectionEvent:
        """The next event, waiting for one.

        Raises:
            StopAsyncIteration: the stream ended and is drained.
        """
        while not self._events:
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._events.popleft()


Listener: TypeAlias = Callable[[ConnectionEvent], None]


class EventHub:
    """Hands each event to every callback and stream; streams end with ``CLOSED``.

    Args:
        name: a label for logs.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._callbacks: list[Listener] = []
        self._streams: list[EventStream] = []
        self._closed = False

    def emit(self, event: ConnectionEvent) -> None:
        """Deliver ``event``; a failing callback is logged and skipped."""
        for stream in self._streams:
            stream.put(event)
        for callback in tuple(self._callbacks):
            try:
                callback(event)
            except Exception:
                _log.exception("= %s: event callback failed", self.name)
        if event.state is ConnectionState.CLOSED:
            self._closed = True
            self._streams.clear()

    def stream(self, maxsize: int = 256) -> EventStream:
        """A new stream of the events from now on (already ended after ``CLOSED``)."""
        stream = EventStream(maxsize)
        if self._closed:
            stream.close()
        else:
            self._streams.append(stream)
        return stream

    def add(self, callback: Listener) -> None:
        """Call ``callback`` with every event."""
        self._callbacks.append(callback)

    def remove(self, callback: Listener) -> None:
        """Stop calling ``callback`` (ignored if it is not registered)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def closed_future(self) -> asyncio.Future[None]:
        """A future done at ``CLOSED`` (cancel it to stop listening)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_result(None)
            return future

        def on_event(event: ConnectionEvent) -> None:
            if event.state is ConnectionState.CLOSED and not future.done():
                future.set_result(None)

        self.add(on_event)
        future.add_done_callback(lambda _: self.remove(on_event))
        return future
