"""Downstream sessions: one per client, with a bounded buffer and coalesced writes.

Each :class:`ClientSession` drives a
:class:`~massivekit.protocol.server.ServerProtocol`, so its handshake, acks,
refusals and auth failures are exactly Massive's. What it adds is the
sending side, built for fan-out:

* **one write per client per round**: frames routed to a client wait in
  its send buffer (:class:`SendQueue`: the C fan-out core's ``Sink``, into
  which the router writes each frame as a WebSocket frame, or the Python
  :class:`SendBuffer`), and a single :class:`Flusher` callback per round
  (at most one per loop turn; under load spaced by ``flush_interval`` and
  by the last round's duration) writes, for every client that got
  something, all of it at once, in one ``transport.write`` (server frames
  are unmasked: a header, then the payload, RFC 6455 5.2). At 1,000
  clients a microsecond per write is already a core (PERFORMANCE.md), so
  never one write per event or per upstream frame;
* **bounded buffers, explicit policy**: a client whose socket is backed up
  (the transport holds more than ``high_water`` bytes) is not written to;
  its frames wait, and once they pass ``buffer_bytes`` (checked each round)
  the policy applies: drop the oldest frames (counted), or ``slow_consumer``
  and a 1008 close, as Massive does. Control frames (acks, statuses) are
  never dropped;
* **nothing waits on a client**: routing only appends to buffers; a slow
  client costs the others nothing but its own bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import operator
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Protocol

from aiohttp import WSMsgType, web

from massivekit.auth import get_logger
from massivekit.config import Market
from massivekit.protocol.server import (
    CloseConnection,
    DropConnection,
    ServerEvent,
    ServerProtocol,
    ServerState,
)
from massivekit.protocol.status import Status
from massivekit.proxy._accel import fanout
from massivekit.proxy.config import SlowClientPolicy
from massivekit.proxy.router import Deliver, Outgoing
from massivekit.wsframe import HEADERS, TABLE, ws_text_header

__all__ = ["ClientSession", "Flusher", "ws_text_header"]

_log = get_logger("massivekit.proxy.downstream")

CONTROL: Final = -1
"""The event count of a control frame (ack, status): never dropped."""
CLOSE_GOING_AWAY: Final = 1001
RETRY_BACKLOG: Final = 0.005
"""Seconds between attempts to write to clients whose sockets were backed up."""
_ids = itertools.count(1)
_send_all: Final = None if fanout is None else fanout.send_all


def _socket_fd(transport: _Transport) -> int | None:
    """The file descriptor a direct send may use, or ``None`` (TLS, or no socket).

    The C core writes a round with one ``send()`` per client on this
    descriptor, and only while the transport, which owns it, is open and
    holds nothing: so the bytes stay in order, and a closed transport's
    descriptor (which the kernel may have given to another connection) is
    never written. Under TLS the socket carries ciphertext: never.
    """
    if transport.get_extra_info("sslcontext") is not None:
        return None
    if transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    fd = sock.fileno()
    return fd if isinstance(fd, int) and fd >= 0 else None


class _Transport(Protocol):
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def _assemble(pending: Iterable[Outgoing]) -> tuple[bytes, int]:
    """The WebSocket text frames of a queue as one bytes, and how many events they hold."""
    parts: list[bytes] = []
    add = parts.append
    events = 0
    headers = HEADERS
    for payload, count, wrap in pending:
        size = len(payload) + 2 if wrap else len(payload)
        add(headers[size] if size < TABLE else ws_text_header(size))
        if wrap:
            add(b"[")
            add(payload)
            add(b"]")
        else:
            add(payload)
        if count > 0:
            events += count
    return b"".join(parts), events


_PAYLOAD: Final = operator.itemgetter(0)
_WRAP: Final = operator.itemgetter(2)


class SendQueue(Protocol):
    """A client's send buffer: frames in order, written all at once.

    Two implementations: :class:`SendBuffer` here, and the C fan-out core's
    ``Sink`` (``massivekit.proxy._fanout``), which the router writes routed
    frames into directly, as WebSocket frames, with no object per frame.
    """

    @property
    def buffered(self) -> int:
        """Bytes waiting (frames not yet written; the ``Sink`` counts their headers too)."""

    @property
    def frames(self) -> int:
        """Frames waiting."""

    def push(self, payload: bytes, events: int, wrap: bool = False) -> None:
        """Queue one frame: ``payload`` (wrapped in ``[...]`` with ``wrap``) of ``events``
        events (negative: a control frame, never dropped)."""

    def take(self) -> tuple[bytes, int, int]:
        """Everything waiting as one bytes ready for the socket, its frames and events."""

    def drop_oldest(self, over: int, /) -> tuple[int, int]:
        """Drop the oldest data frames until ``over`` bytes are gone; (frames, events)."""

    def clear(self) -> None:
        """Forget everything waiting."""


class SendBuffer:
    """The pure-Python :class:`SendQueue`: a deque of :data:`Outgoing` frames.

    The router hands it frames with :attr:`append` (a C-level
    ``deque.append``) and marks the client itself; :meth:`push` marks too.

    Args:
        mark: called on every :meth:`push` (the flusher's ``dirty.add``).
    """

    def __init__(self, mark: Callable[[], object]) -> None:
        self._queue: deque[Outgoing] = deque()
        self.append: Deliver = self._queue.append
        """Queue one frame without marking (the router's ``deliver``)."""
        self._mark = mark
        self._sized = self._sized_bytes = 0  # frames of the queue measured, and their bytes

    @property
    def buffered(self) -> int:
        """Bytes waiting (frames not yet written).

        Measured incrementally: between takes the queue only grows at its
        right end, so only the frames added since the last look are measured,
        taken from that end, however long a backed-up client's queue (it is
        checked every write round).
        """
        queue = self._queue
        known = self._sized
        if len(queue) > known:
            new = list(itertools.islice(reversed(queue), len(queue) - known))
            self._sized_bytes += sum(map(len, map(_PAYLOAD, new))) + 2 * sum(map(_WRAP, new))
            self._sized = len(queue)
        return self._sized_bytes

    @property
    def frames(self) -> int:
        """Frames waiting."""
        return len(self._queue)

    def push(self, payload: bytes, events: int, wrap: bool = False) -> None:
        """Queue one frame and mark the client."""
        self._queue.append((payload, events, wrap))
        self._mark()

    def take(self) -> tuple[bytes, int, int]:
        """Everything waiting as one bytes ready for the socket, its frames and events."""
        data, events = _assemble(self._queue)
        frames = len(self._queue)
        self.clear()
        return data, frames, events

    def drop_oldest(self, over: int) -> tuple[int, int]:
        """Drop the oldest data frames until ``over`` bytes are gone; (frames, events)."""
        kept: list[Outgoing] = []
        queue = self._queue
        frames = events = 0
        while over > 0 and queue:
            item = queue.popleft()
            payload, count, wrap = item
            if count == CONTROL:
                kept.append(item)
                continue
            over -= len(payload) + 2 * wrap
            frames += 1
            events += count
        queue.extendleft(reversed(kept))
        self._sized = self._sized_bytes = 0
        return frames, events

    def clear(self) -> None:
        """Forget everything waiting."""
        self._queue.clear()
        self._sized = self._sized_bytes = 0


class Flusher:
    """Writes every client that has frames, once per event-loop turn.

    Routers append to the clients' queues and mark them dirty (C-level
    calls both) and call :meth:`schedule` once per routed frame; the round
    then writes the clients marked since the last one. With the C core,
    the round is one call (``send_all``): a ``send()`` per client straight
    from its buffer, with no Python per client; clients it cannot write
    that way (a transport holding data, a backed-up or closing client)
    take the Python path, unchanged.

    Under load, rounds are at least ``interval`` apart, and at least
    ``duty`` times as long apart as the last round took: what is routed
    meanwhile waits and goes out in the next round, so the number of writes
    (each a system call, and on loopback the receiver's TCP work too) stays
    bounded however fast frames come, and writing never crowds out reading
    and routing (with ``duty=0.5``, rounds take at most two thirds of the
    time). With 1,000 clients a round is 1,000 writes, milliseconds of
    kernel time on its own; an event waits about a round and the gap after
    it, so the duty trades latency for the core's time. A frame arriving
    after a quiet spell is written in the same loop turn.

    Args:
        on_round: called after each round with the seconds from the first
            frame noted (:meth:`note_received`) to the end of the writes.
        interval: the least seconds between two rounds (0: every loop turn).
        duty: the least time between the end of a round and the start of
            the next, as a multiple of the round's own duration.
    """

    def __init__(
        self,
        on_round: Callable[[float], None] | None = None,
        *,
        interval: float = 0.0,
        duty: float = 0.5,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._duty = duty
        self._spacing = interval  # the least time from this round's start to the next
        self._last = -interval
        self.dirty: set[ClientSession] = set()
        """Sessions with something queued since the last round (``mark`` adds)."""
        self._backlog: set[ClientSession] = set()
        self._scheduled = False
        self._retry: asyncio.TimerHandle | None = None
        self._first: float | None = None
        self._on_round = on_round
        self.rounds = 0

    def note_received(self) -> None:
        """An upstream frame arrived: the latency of this round counts from the first."""
        if self._first is None:
            self._first = time.perf_counter()

    def schedule(self) -> None:
        """Some queue grew: write at the end of this loop turn, or ``interval`` after the last."""
        if not self._scheduled:
            self._scheduled = True
            loop = self._loop
            due = self._last + self._spacing
            if due <= loop.time():
                loop.call_soon(self.flush)
            else:
                loop.call_at(due, self.flush)

    def flush(self) -> None:
        """Write every client with queued frames now (the loop callback)."""
        self._scheduled = False
        self._last = self._loop.time()
        start = time.perf_counter()  # uvloop's clock counts whole milliseconds
        backlog = self._backlog
        # A snapshot (a write may end a session). Backed-up clients are tried
        # every round too: a send buffer marks its client only when it stops
        # being empty, and theirs are not.
        if _send_all is None:
            dirty = list(self.dirty | backlog if backlog else self.dirty)
            self.dirty.clear()
            for session in dirty:
                self._write(session)
        else:
            dirty = list(self.dirty - backlog if backlog else self.dirty)
            self.dirty.clear()
            for session in list(backlog):
                self._write(session)
            for session, rest in _send_all(dirty):
                if rest is None:
                    self._write(session)
                else:  # the socket took part: the transport writes the rest, in order
                    session.hand_over(rest)
        took = time.perf_counter() - start
        self._spacing = max(self._interval, took * (1.0 + self._duty))
        self.rounds += 1
        first, self._first = self._first, None
        if first is not None and self._on_round is not None:
            self._on_round(time.perf_counter() - first)
        if backlog and self._retry is None:
            self._retry = self._loop.call_later(RETRY_BACKLOG, self._retry_backlog)

    def _write(self, session: ClientSession) -> None:
        if session.queued and not session.write():
            session.enforce_limit()
            self._backlog.add(session)
        else:
            self._backlog.discard(session)

    def _retry_backlog(self) -> None:
        self._retry = None
        for session in list(self._backlog):
            if session.write():
                self._backlog.discard(session)
            else:  # still backed up, and maybe still growing: the policy applies
                session.enforce_limit()
        if self._backlog:
            self._retry = self._loop.call_later(RETRY_BACKLOG, self._retry_backlog)

    def forget(self, session: ClientSession) -> None:
        """Stop writing ``session`` (it is gone)."""
        self.dirty.discard(session)
        self._backlog.discard(session)

    def close(self) -> None:
        """Cancel the retry timer."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None


Handler = Callable[["ClientSession", list[ServerEvent]], Awaitable[None]]
"""What the server does with a session's protocol events (subscriptions...)."""


class ClientSession:
    """One downstream client: its protocol, its buffer, and how it is written.

    Args:
        market: the cluster it connected to.
        protocol: its server protocol (with the proxy's authenticator).
        ws: the prepared aiohttp WebSocket (reading and closing).
        transport: the raw transport under ``ws`` (coalesced writes).
        flusher: the proxy's write scheduler.
        policy: what happens when the buffer is full.
        buffer_bytes: the most unsent bytes kept for this client.
        high_water: transport bytes above which the client counts as backed up.
    """

    def __init__(
        self,
        market: Market,
        protocol: ServerProtocol,
        ws: web.WebSocketResponse,
        transport: _Transport,
        flusher: Flusher,
        *,
        policy: SlowClientPolicy = SlowClientPolicy.DROP_OLDEST,
        buffer_bytes: int = 4 * 1024 * 1024,
        high_water: int = 256 * 1024,
        peer: str = "",
    ) -> None:
        self.id = next(_ids)
        self.market = market
        self.protocol = protocol
        self.peer = peer
        self.ws = ws
        self._transport = transport
        self._flusher = flusher
        self._policy = policy
        self._limit = buffer_bytes
        self._high_water = high_water
        self.mark: Callable[[], object] = functools.partial(flusher.dirty.add, self)
        """Tell the flusher this client has frames (the router's ``mark``: C-level)."""
        self.sink: Any = None
        """The C core's ``Sink`` holding this client's send buffer, when built: an
        accelerated router writes routed frames straight into it."""
        self.enqueue: Deliver
        """Queue one frame for this client (the router's ``deliver``)."""
        self.buffer: SendQueue
        if fanout is not None:
            self.sink = self.buffer = fanout.Sink(self.mark)
            self.enqueue = self._push_item
            fd = _socket_fd(transport)
            if fd is not None:
                self.sink.attach(fd, transport)
        else:
            python = SendBuffer(self.mark)
            self.buffer, self.enqueue = python, python.append
        self.connected_at = time.time()
        self._frames_sent = self._events_sent = self._bytes_sent = 0
        self.dropped_frames = self.dropped_events = 0
        self.close_reason = ""
        self._close: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"ClientSession(#{self.id}, {self.market.value}, {self.principal or '-'})"

    @property
    def principal(self) -> str | None:
        """The name of the proxy key it authenticated with (never the key)."""
        return self.protocol.principal

    @property
    def frames_sent(self) -> int:
        """Frames handed to the socket (or to the transport, when the socket was full)."""
        return self._frames_sent + (self.sink.sent[0] if self.sink is not None else 0)

    @property
    def events_sent(self) -> int:
        """Events in those frames."""
        return self._events_sent + (self.sink.sent[1] if self.sink is not None else 0)

    @property
    def bytes_sent(self) -> int:
        """Bytes in those frames, WebSocket headers included."""
        return self._bytes_sent + (self.sink.sent[2] if self.sink is not None else 0)

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting in the send buffer (frames not yet written)."""
        return self.buffer.buffered

    @property
    def queued(self) -> int:
        """Frames waiting in the send buffer."""
        return self.buffer.frames

    @property
    def closing(self) -> bool:
        """Whether a close was requested."""
        return self._close.done()

    # -- the sending side ------------------------------------------------------------

    def push(self, payload: bytes, events: int) -> None:
        """Queue one whole frame of ``events`` events (negative: a control frame)."""
        self.buffer.push(payload, events)
        self.mark()
        self._flusher.schedule()

    def _push_item(self, item: Outgoing) -> None:
        self.buffer.push(*item)

    def push_control(self, frame: bytes) -> None:
        """Queue a control frame (ack, status), in order with the data, never dropped."""
        self.push(frame, CONTROL)

    def flush_protocol(self) -> None:
        """Queue what the protocol wants to send."""
        for frame in self.protocol.data_to_send():
            self.push_control(frame)

    def write(self, *, force: bool = False) -> bool:
        """Write the whole queue in one transport write.

        Args:
            force: write even if the transport is backed up (closing).

        Returns:
            ``False`` when the transport is backed up and nothing was written.
        """
        buffer = self.buffer
        if not buffer.frames:
            return True
        transport = self._transport
        if transport.is_closing():
            buffer.clear()
            return True
        if not force and transport.get_write_buffer_size() > self._high_water:
            return False
        data, frames, events = buffer.take()
        transport.write(data)
        self._frames_sent += frames
        self._events_sent += events
        self._bytes_sent += len(data)
        return True

    def hand_over(self, rest: bytes) -> None:
        """Give the transport what a direct send left (its socket buffer was full)."""
        self._transport.write(rest)

    def enforce_limit(self) -> None:
        """The transport is backed up: apply the policy if the buffer passed its limit."""
        over = self.buffer.buffered - self._limit
        if over <= 0:
            return
        if self._policy is SlowClientPolicy.DISCONNECT:
            self.disconnect(Status.SLOW_CONSUMER)
            return
        frames, events = self.buffer.drop_oldest(over)
        self.dropped_frames += frames
        self.dropped_events += events

    def disconnect(self, status: Status) -> None:
        """End the session with a Massive disconnect status (``slow_consumer``...)."""
        if self.closing:
            return
        self.buffer.clear()
        events = self.protocol.disconnect(status)
        self.flush_protocol()
        self.write(force=True)  # the status must reach it, however backed up
        for event in events:
            if isinstance(event, CloseConnection):
                self.request_close(event.code, event.reason)

    def request_close(self, code: int, reason: str) -> None:
        """Ask the session's handler to close with ``code`` after the buffer."""
        if not self._close.done():
            self.close_reason = reason
            self._close.set_result((code, reason))

    def transport_buffered(self) -> int:
        """Bytes the transport still holds."""
        if self._transport.is_closing():
            return 0
        return self._transport.get_write_buffer_size()

    # -- the receiving side, and the session's lifetime -------------------------------

    async def serve(self, handler: Handler, *, auth_timeout: float, close_timeout: float) -> None:
        """Read client actions until the client leaves or a close is requested.

        Args:
            handler: told of every protocol event (it subscribes upstream...).
            auth_timeout: seconds the client has to authenticate.
            close_timeout: seconds a close handshake may take before the cut.
        """
        self.flush_protocol()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(auth_timeout, self._auth_timed_out)
        reader = loop.create_task(self._read(handler, timer), name=f"proxy-client-{self.id}")
        try:
            waits: list[asyncio.Future[Any]] = [reader, self._close]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            await self._finish(reader, close_timeout)

    async def _read(self, handler: Handler, timer: asyncio.TimerHandle) -> None:
        async for message in self.ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            events = self.protocol.receive(message.data)
            if self.protocol.state is not ServerState.AUTHENTICATING:
                timer.cancel()
            self.flush_protocol()
            for event in events:
                if isinstance(event, DropConnection):
                    self.close_reason = event.reason
                    self.write(force=True)
                    self._transport.close()  # no close frame, as Massive on a bad key
                    return
                if isinstance(event, CloseConnection):
                    self.request_close(event.code, event.reason)
            await handler(self, events)

    def _auth_timed_out(self) -> None:
        for event in self.protocol.auth_timed_out():
            self.flush_protocol()
            if isinstance(event, CloseConnection):
                self.request_close(event.code, event.reason)

    async def _finish(self, reader: asyncio.Task[None], close_timeout: float) -> None:
        self._flusher.forget(self)
        if self.sink is not None:
            self.sink.detach()  # from here on only the transport writes its socket
        if self._close.done() and not self._transport.is_closing():
            code, reason = self._close.result()
            self.write(force=True)
            try:
                async with asyncio.timeout(close_timeout):
                    await self.ws.close(code=code, message=reason.encode()[:120])
            except TimeoutError:
                self._transport.abort()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([reader], timeout=close_timeout)
        if not reader.done():  # pragma: no cover - aiohttp always ends the read on cancel
            self._transport.abort()
        elif not reader.cancelled() and reader.exception() is not None:
            _log.debug("= client #%s read ended: %r", self.id, reader.exception())
