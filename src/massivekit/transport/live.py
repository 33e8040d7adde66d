"""One socket's worth of session state, for the connection actor.

A :class:`Live` is made per connection attempt and dropped when the socket
ends. It is the :class:`~massivekit.transport.socket.SocketListener` the
adapter pushes into (so a late callback from an old socket can never touch
the next session), it holds the socket's outbox and writer loop, its timers
(heartbeat, pong deadline, silence watchdog, ack deadline), its counters,
and the record of why it ended. The policy (what to do about it) stays in
:class:`~massivekit.transport.connection.Connection`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from massivekit.errors import Disconnected, MassiveError, RequestTimeout
from massivekit.transport.handler import ProtocolSession, Reconnect
from massivekit.transport.socket import SocketConnection

if TYPE_CHECKING:
    from massivekit.transport.connection import ConnectionConfig, Heartbeat

__all__ = ["Direct", "DirectSink", "Live", "MessageSink"]

MessageSink = Callable[[bytes | str, bool], None]
"""Takes one message from the socket reader: ``(data, binary)``."""


class Direct(NamedTuple):
    """How a :class:`DirectSink` takes one session's messages off the socket.

    Attributes:
        convert: turns a message into what the sink keeps (e.g. decodes it);
            raises :class:`ValueError` for a message it does not take, which
            then goes the general way.
        into: the list the socket reader appends ``convert(data)`` to.
        flush: called after each run of messages the reader delivered
            together; it hands ``into`` on and empties it.
        taken: how many messages were kept so far (the silence watchdog and
            the backoff reset count them too).
    """

    convert: Callable[[bytes | str], Any]
    into: list[Any]
    flush: Callable[[], None]
    taken: Callable[[], int]


class DirectSink(Protocol):
    """An update sink that can also take a READY session's messages straight off the socket.

    Optional, for the hottest consumers (the stream client): instead of
    socket reader → session's plain-update check → sink, the socket reader
    converts each message with the sink's function and appends the result
    to the sink's list, and tells the sink once per read. Everything the
    function refuses (statuses, acks, frames it cannot read) goes the
    general way, so the protocol still sees it.
    """

    def bind(self, fallback: MessageSink, failed: Callable[[Exception], None]) -> Direct | None:
        """The direct path for one session, or ``None`` for the general path now.

        Called when the session is READY, and again whenever the owner asks
        (``Connection.refresh_direct``), e.g. because what it needs changed.

        Args:
            fallback: the general path (for the sink's own use; the socket
                reader already gives it what ``convert`` refuses).
            failed: report an exception of the sink's own (its functions
                must not raise: that would end the session); the stream goes on.
        """
        ...


WATCHDOG_TICKS = 4
"""The silence watchdog looks this many times per ``silence_timeout``: an
alarm comes between 1 and 1.25 timeouts after the last message, for the
cost of one counter increment per message."""


def _never(data: bytes | str, binary: bool) -> bool:
    return False


def _none_taken() -> int:
    return 0


class _Owner(Protocol):
    def receive(self, live: Live, data: bytes | str, binary: bool) -> None: ...

    def sink_failed(self, error: Exception) -> None: ...


class Live:
    """The state of one socket, from connect to its end.

    Args:
        owner: the connection actor, told of messages the session must see.
        session: the protocol state of this socket.
        deliver: where updates go (``payload, topic``); it must not raise, and
            if it does the owner's ``sink_failed`` is told and the stream goes on.
    """

    def __init__(
        self,
        owner: _Owner,
        session: ProtocolSession,
        deliver: Callable[[Any, str | None], None],
        direct: DirectSink | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._owner = owner
        self.session = session
        self._deliver = deliver
        self._direct = direct
        self._taken: Callable[[], int] = _none_taken
        self._taken_before = 0  # messages taken by earlier bindings of this session
        self._fast = False
        self._plain: Callable[[bytes | str, bool], bool] = _never
        self.conn: SocketConnection | None = None
        self.ready: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self.stop: asyncio.Future[None] = loop.create_future()
        self._messages = 0  # messages through on_message (not those a direct sink took)
        self._slow = 0  # messages that went through the protocol
        self._slow_updates = 0  # updates among what they yielded
        self.error: BaseException | None = None
        self.reason = ""
        self.reconnect = Reconnect.BACKOFF
        self._outbox: deque[bytes | str] = deque()
        self._wakeup = asyncio.Event()
        self._beat_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._ack_timer: asyncio.TimerHandle | None = None

    def open_fast_path(self) -> None:
        """The session is READY: let plain updates skip the protocol from now on.

        With a :class:`DirectSink`, the socket adapter calls the sink's own
        function from now on, and this object sees only what it gives back.
        """
        self._plain = self.session.is_plain_update
        self._fast = True
        self.rebind_direct()

    def rebind_direct(self) -> None:
        """Ask the direct sink again how it takes this session's messages (once READY)."""
        if self._direct is None or self.conn is None or not self._fast:
            return
        direct = self._direct.bind(self.on_message, self._owner.sink_failed)
        self._taken_before += self._taken()
        if direct is None:
            self._taken = _none_taken
            self.conn.divert(self.on_message)
        else:
            self._taken = direct.taken
            self.conn.divert(
                self.on_message, direct.flush, convert=direct.convert, into=direct.into
            )

    @property
    def messages(self) -> int:
        """Messages received since READY or before (taken by a direct sink or not)."""
        return self._messages + self._taken_before + self._taken()

    # -- SocketListener -------------------------------------------------------------------

    def on_message(self, data: bytes | str, binary: bool) -> None:
        """A message from the socket: plain updates go straight to the sink."""
        self._messages += 1
        if self._plain(data, binary):
            try:
                self._deliver(data, None)
            except Exception as exc:  # user-facing code: one bad update must not end the session
                self._owner.sink_failed(exc)
        else:
            self._slow += 1
            self._owner.receive(self, data, binary)

    def on_closed(self, code: int | None, reason: str, error: BaseException | None) -> None:
        """The socket ended: record why, unless something already explained it."""
        if self.error is None:
            if error is not None:
                self.note(error, "failed")
            elif code is None:
                self.note(
                    Disconnected("dropped without a close frame", reason="dropped"), "dropped"
                )
            else:
                text = f"closed by the server with code {code}" + (f": {reason}" if reason else "")
                self.note(Disconnected(text, reason="closed", close_code=code), "closed")
        elif isinstance(self.error, Disconnected) and self.error.close_code is None:
            self.error.close_code = code
        if not self.ended.done():
            self.ended.set_result(None)

    def on_pong(self) -> None:
        """A WebSocket pong."""
        self.pong()

    def update(self, payload: Any, topic: str | None) -> None:
        """Deliver one update the session decoded (the slow path)."""
        self._slow_updates += 1
        try:
            self._deliver(payload, topic)
        except Exception as exc:
            self._owner.sink_failed(exc)

    @property
    def updates(self) -> int:
        """Updates delivered (plain messages are not counted one by one: the hot path)."""
        return self.messages - self._slow + self._slow_updates

    # -- outcome ----------------------------------------------------------------------------

    def note(
        self, error: BaseException, reason: str, reconnect: Reconnect = Reconnect.BACKOFF
    ) -> None:
        """Record why the session ends (the first explanation wins)."""
        if self.error is None:
            self.error = error
            self.reason = reason
            self.reconnect = reconnect

    def fail(
        self, error: BaseException, reason: str, reconnect: Reconnect = Reconnect.BACKOFF
    ) -> None:
        """End the session now, without a close frame, for ``reason``."""
        self.note(error, reason, reconnect)
        if self.conn is not None and not self.ended.done():
            self.conn.abort()
        if not self.ended.done():
            self.ended.set_result(None)

    def request_stop(self) -> None:
        """Ask the runner to close this socket gracefully."""
        if not self.stop.done():
            self.stop.set_result(None)

    # -- sending ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Move what the session wants to send into the outbox."""
        out = self.session.data_to_send()
        if out:
            self._outbox.extend(out)
            self._wakeup.set()

    async def write_loop(self) -> None:
        """Send the outbox in order until cancelled (owned by the runner)."""
        conn = self.conn
        assert conn is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outbox:
                try:
                    await conn.send(self._outbox.popleft())
                except MassiveError as exc:
                    self.fail(exc, "send_failed")
                    return

    async def shutdown(self, writer: asyncio.Task[None], close_timeout: float) -> None:
        """Stop the timers and the writer, then close the socket (gracefully if still open)."""
        self.cancel_timers()
        writer.cancel()
        await asyncio.wait([writer])
        conn = self.conn
        if conn is None:
            return
        if not self.ended.done():
            try:
                async with asyncio.timeout(close_timeout):
                    await conn.close()
            except TimeoutError:
                conn.abort()
        await conn.close()

    # -- timers -------------------------------------------------------------------------------

    def start_timers(self, config: ConnectionConfig) -> None:
        """Start the heartbeat and the silence watchdog of a READY session."""
        heartbeat = config.heartbeat
        if heartbeat.interval:
            self._beat_timer = self._loop.call_later(heartbeat.interval, self._beat, heartbeat)
        if config.silence_timeout:
            tick = config.silence_timeout / WATCHDOG_TICKS
            self._watch_timer = self._loop.call_later(
                tick, self._watch, config.silence_timeout, self.messages, 0
            )

    def cancel_timers(self) -> None:
        """Cancel every timer of this session."""
        for timer in (self._beat_timer, self._pong_timer, self._watch_timer, self._ack_timer):
            if timer is not None:
                timer.cancel()
        self._beat_timer = self._pong_timer = self._watch_timer = self._ack_timer = None

    def _beat(self, heartbeat: Heartbeat) -> None:
        if self.ended.done() or self.conn is None:
            return
        if self._pong_timer is None:  # one ping outstanding at a time
            if heartbeat.protocol and self.session.ping():
                self.flush()
            else:
                self.conn.ping()
            self._pong_timer = self._loop.call_later(
                heartbeat.timeout, self._pong_missed, heartbeat.timeout
            )
        assert heartbeat.interval is not None
        self._beat_timer = self._loop.call_later(heartbeat.interval, self._beat, heartbeat)

    def pong(self) -> None:
        """A pong came: the peer is alive."""
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None

    def _pong_missed(self, timeout: float) -> None:
        self._pong_timer = None
        self.fail(RequestTimeout(f"no pong within {timeout:g}s"), "pong_timeout")

    def _watch(self, silence: float, seen: int, quiet: int) -> None:
        quiet = quiet + 1 if self.messages == seen else 0
        if quiet >= WATCHDOG_TICKS:
            self._watch_timer = None
            self.fail(RequestTimeout(f"no message for {silence:g}s"), "silence")
            return
        self._watch_timer = self._loop.call_later(
            silence / WATCHDOG_TICKS, self._watch, silence, self.messages, quiet
        )

    def arm_ack(self, timeout: float, expired: Callable[[Live], None]) -> None:
        """Call ``expired(self)`` unless :meth:`cancel_ack` comes within ``timeout``."""
        self._ack_timer = self._loop.call_later(timeout, self._ack_fired, expired)

    def _ack_fired(self, expired: Callable[[Live], None]) -> None:
        self._ack_timer = None
        if not self.ended.done():
            expired(self)

    def cancel_ack(self) -> None:
        """Cancel the ack deadline."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
