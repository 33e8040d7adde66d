"""The WebSocket half of the mock: sessions, the per-cluster feed, and faults.

Each connection is a :class:`MockSession` driving a
:class:`~massivekit.protocol.server.ServerProtocol`. Frames to a client go
through a bounded outbox drained by the session's own writer task, so a
client that stops reading never stalls the feed or the other clients: when
its outbox passes ``slow_consumer_bytes`` it gets ``slow_consumer`` and is
closed, as Massive does.

One :class:`MarketFeed` per cluster runs while anyone is connected to it:
a timer asks the simulator for ``rate * elapsed`` events and hands each
session the events of its topics, cut into frames of ``frame_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from aiohttp import WSMsgType, web

from massivekit.auth import get_logger
from massivekit.config import Market
from massivekit.protocol.server import (
    Authenticated,
    CloseConnection,
    DropConnection,
    ServerEvent,
    ServerProtocol,
    ServerState,
)
from massivekit.protocol.status import CLOSE_POLICY_VIOLATION, Status
from massivekit.sim.market import MarketSimulator, SimBatch
from massivekit.wsframe import ws_text_header

log = get_logger("massivekit.mock.ws")

MAX_LAG = 0.05
"""Seconds of events a late feed tick may catch up on at once."""


class Malformed(enum.Enum):
    """Kinds of bad frame the mock can send on demand."""

    NOT_JSON = b'[{"ev":"T","sym":"AAPL","p":1'
    NOT_ARRAY = b'{"ev":"T","sym":"AAPL"}'
    UNKNOWN_EVENT = b'[{"ev":"ZZ","sym":"AAPL","new_field":1}]'
    OVERSIZE = b""  # built on demand: a valid frame larger than any sane limit


@dataclass
class WsFaults:
    """Switches for the WebSocket side, changeable while the server runs.

    Attributes:
        auth_timeout: seconds a client has to send ``auth``.
        max_connections: connections per key per cluster family (real-time and
            delayed share the limit on the real service, as here).
        evict: on one connection too many, cut the ``newest`` or the ``oldest``.
        slow_consumer_bytes: unsent bytes after which a client is cut.
        ignore_auth: never answer ``auth`` (to exercise client auth timeouts).
        slow_consumer_grace: seconds before a slow client is cut outright.
    """

    auth_timeout: float = 10.0
    max_connections: int = 1
    evict: Literal["newest", "oldest"] = "newest"
    slow_consumer_bytes: int = 64 * 1024 * 1024
    ignore_auth: bool = False
    slow_consumer_grace: float = 2.0
    """Seconds a slow client gets to read its ``slow_consumer`` status before the cut."""


class MockSession:
    """One client connection."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, protocol: ServerProtocol
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.market = protocol.market
        self.opened = time.monotonic()
        self.frames_sent = 0
        self.events_sent = 0
        self._transport = request.transport
        self._io = request.protocol
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._wakeup = asyncio.Event()
        self._closing: CloseConnection | DropConnection | None = None
        self._flood: asyncio.Task[None] | None = None

    @property
    def principal(self) -> str | None:
        return self.protocol.principal

    @property
    def ready(self) -> bool:
        return self.protocol.state is ServerState.READY

    def offer(self, frame: bytes, limit: int) -> bool:
        """Queue ``frame``; ``False`` when the client is too slow to take it."""
        if self._closing is not None:
            return True
        if self._outbox_bytes + len(frame) > limit:
            return False
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
        self._wakeup.set()
        return True

    def discard_queued(self) -> None:
        """Forget the frames not yet written (a slow client loses its backlog)."""
        self._outbox.clear()
        self._outbox_bytes = 0

    def flush_protocol(self) -> None:
        """Queue the frames the protocol produced, bypassing the size limit."""
        for frame in self.protocol.data_to_send():
            self._outbox.append(frame)
            self._outbox_bytes += len(frame)
        self._wakeup.set()

    @property
    def closing(self) -> bool:
        """Whether a close or cut is scheduled after the queued frames."""
        return self._closing is not None

    def close_after_flush(self, close: CloseConnection | DropConnection) -> None:
        """Send what is queued, then close with a frame or cut the connection."""
        self._closing = close
        self._wakeup.set()

    def drop(self) -> None:
        """Cut the TCP connection with no close frame."""
        if self._transport is not None:
            self._transport.abort()

    @property
    def flooding(self) -> bool:
        """Whether a flood was started for this session (it may have finished)."""
        return self._flood is not None

    def start_flood(self, chunks: Sequence[FloodChunk], *, loop: bool) -> None:
        """Start writing ``chunks`` straight to the socket (flood mode); owned here."""
        if self._flood is None:
            self._flood = asyncio.create_task(
                self._flood_until_done(chunks, loop), name="mock-ws-flood"
            )

    async def stop_flood(self) -> None:
        """Stop the flood, if any, and wait for it."""
        if self._flood is not None:
            await cancel_quietly(self._flood)

    async def _drain(self) -> None:
        """Wait while the transport is over its high-water mark; else just yield."""
        if self._io.writing_paused:
            # aiohttp has no public drain for a WebSocketResponse; this is what
            # its own writers await, woken by the protocol's resume_writing().
            await self._io._drain_helper()
        else:
            await asyncio.sleep(0)  # let the reader and the other sessions run

    async def _flood_until_done(self, chunks: Sequence[FloodChunk], loop: bool) -> None:
        transport = self._transport
        if transport is None or not chunks:
            return
        with contextlib.suppress(ConnectionError):
            while self._outbox:  # the acks go out before the data, as on the service
                await self._drain()
            while True:
                for chunk in chunks:
                    # A close frame may be on its way: nothing may follow it.
                    if self._closing is not None or transport.is_closing():
                        return
                    # Whole frames only, in one write: the session's own writer
                    # (acks, statuses) can interleave between chunks, never inside.
                    transport.write(chunk.data)
                    self.frames_sent += chunk.frames
                    self.events_sent += chunk.events
                    await self._drain()
                if not loop:
                    return

    async def write_loop(self) -> None:
        """Send queued frames until closed; owned by the session's handler."""
        with contextlib.suppress(ConnectionError):
            await self._write_until_closed()

    async def _write_until_closed(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outbox:
                frame = self._outbox.popleft()
                self._outbox_bytes -= len(frame)
                await self.ws.send_frame(frame, WSMsgType.TEXT)
                self.frames_sent += 1
            closing = self._closing
            if isinstance(closing, DropConnection):
                self.drop()
                return
            if closing is not None:
                await self.ws.close(code=closing.code, message=closing.reason.encode())
                return


class MarketFeed:
    """The simulated market of one cluster, pushed to its sessions."""

    def __init__(
        self,
        market: Market,
        simulator: MarketSimulator,
        sessions: Callable[[], Sequence[MockSession]],
        *,
        rate: float,
        frame_events: int,
        on_slow: Callable[[MockSession], None],
        slow_limit: Callable[[], int],
        tick: float = 0.005,
    ) -> None:
        self.market = market
        self.simulator = simulator
        self.rate = rate
        self.frame_events = max(1, frame_events)
        self.events_generated = 0
        self.events_skipped = 0
        """Events the feed could not produce in time and skipped rather than burst."""
        self._sessions = sessions
        self._on_slow = on_slow
        self._slow_limit = slow_limit
        self._tick = tick

    async def run(self) -> None:
        """Generate and dispatch until cancelled."""
        carry = 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            carry += self.rate * (now - last)
            last = now
            # A late tick must not turn into a burst that makes the next one
            # later still: skip (and count) what is over MAX_LAG behind.
            backlog = self.rate * MAX_LAG
            if carry > backlog:
                self.events_skipped += int(carry - backlog)
                carry = backlog
            count = int(carry)
            if count <= 0:
                continue
            carry -= count
            self.push(self.simulator.batch(count, int(time.time() * 1000)))

    def push(self, batch: SimBatch) -> None:
        """Hand each ready session the events of its topics, framed."""
        self.events_generated += len(batch.data)
        limit = self._slow_limit()
        pairs: list[tuple[str, bytes]] | None = None
        # Topics are interned, so the set costs a hash lookup per event; a
        # session whose wildcards cover every kind in the batch takes it all.
        kinds = {topic.partition(".")[0] for topic in set(batch.topics)}
        for session in self._sessions():
            if not session.ready:
                continue
            if session.protocol.holds_wildcards(kinds):
                picked = batch.data  # every event of the cluster: no filtering
            else:
                if pairs is None:
                    pairs = list(zip(batch.topics, batch.data, strict=True))
                wants = session.protocol.wants_topic
                picked = [data for topic, data in pairs if wants(topic)]
            if picked and not self._send(session, picked, limit):
                self._on_slow(session)

    def _send(self, session: MockSession, picked: list[bytes], limit: int) -> bool:
        size = self.frame_events
        for start in range(0, len(picked), size):
            frame = b"[" + b",".join(picked[start : start + size]) + b"]"
            if not session.offer(frame, limit):
                return False
            session.events_sent += min(size, len(picked) - start)
        return True


@dataclass(frozen=True)
class FloodMode:
    """Flood mode: each subscribed session gets pre-rendered frames as fast as it reads.

    For benchmarks of clients: the frames are rendered once, with their
    WebSocket headers, and written to the socket in large chunks, honouring
    the transport's flow control, so the mock itself costs almost nothing per
    frame. The flood starts at a session's first acknowledged subscription and
    carries the events of the topics it holds then (later subscriptions do not
    change it); the rate-driven feed does not run.

    Attributes:
        frame_events: events in each frame.
        frames: distinct frames rendered (once per cluster, then reused).
        loop: send the frames again and again until the client leaves; if
            False, send them once, then stay connected and quiet.
        chunk_bytes: about how many bytes go to the socket per write.
    """

    frame_events: int = 10
    frames: int = 2_000
    loop: bool = True
    chunk_bytes: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class FloodChunk:
    """Whole WebSocket frames, header included, to write in one call."""

    data: bytes
    frames: int
    events: int


class FloodFrames:
    """The events of a flood, rendered once per cluster; chunks cut per session."""

    def __init__(self, market: Market, mode: FloodMode, seed: int) -> None:
        simulator = MarketSimulator(market, seed=seed)
        count = max(1, mode.frame_events) * max(1, mode.frames)
        self.mode = mode
        self.batch = simulator.batch(count, int(time.time() * 1000))
        self.kinds = frozenset(topic.partition(".")[0] for topic in set(self.batch.topics))
        self._all: list[FloodChunk] | None = None

    def chunks_for(self, protocol: ServerProtocol) -> list[FloodChunk]:
        """The chunks carrying the events ``protocol``'s session subscribed to."""
        if protocol.holds_wildcards(self.kinds):
            if self._all is None:
                self._all = self._chunk(self.batch.data)
            return self._all
        wants = protocol.wants_topic
        picked = [
            data
            for topic, data in zip(self.batch.topics, self.batch.data, strict=True)
            if wants(topic)
        ]
        return self._chunk(picked)

    def _chunk(self, events: list[bytes]) -> list[FloodChunk]:
        per_frame = max(1, self.mode.frame_events)
        chunks: list[FloodChunk] = []
        parts: list[bytes] = []
        size = frames = count = 0
        for start in range(0, len(events), per_frame):
            group = events[start : start + per_frame]
            payload = b"[" + b",".join(group) + b"]"
            parts += (ws_text_header(len(payload)), payload)
            size += len(parts[-2]) + len(payload)
            frames += 1
            count += len(group)
            if size >= self.mode.chunk_bytes:
                chunks.append(FloodChunk(b"".join(parts), frames, count))
                parts, size, frames, count = [], 0, 0, 0
        if parts:
            chunks.append(FloodChunk(b"".join(parts), frames, count))
        return chunks


def apply_events(session: MockSession, events: Sequence[ServerEvent]) -> bool:
    """Carry out what the protocol asked; ``False`` once the session must end."""
    session.flush_protocol()
    for event in events:
        if isinstance(event, DropConnection | CloseConnection):
            log.debug("= %s ending: %s", session.market.value, event.reason)
            session.close_after_flush(event)
            return False
        if isinstance(event, Authenticated):
            log.debug("= %s authenticated %s", session.market.value, event.principal)
    return True


def disconnect(session: MockSession, status: Status, message: str | None = None) -> None:
    """End ``session`` with a disconnect status, then its close code."""
    for event in session.protocol.disconnect(status, message):
        session.flush_protocol()
        if isinstance(event, CloseConnection):
            session.close_after_flush(event)


def oversize_frame(size: int) -> bytes:
    """A syntactically valid frame of about ``size`` bytes."""
    padding = "x" * size
    return b'[{"ev":"T","sym":"AAPL","pad":"' + padding.encode() + b'"}]'


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


__all__ = [
    "CLOSE_POLICY_VIOLATION",
    "FloodChunk",
    "FloodFrames",
    "FloodMode",
    "Malformed",
    "MarketFeed",
    "MockSession",
    "WsFaults",
    "apply_events",
    "cancel_quietly",
    "disconnect",
    "oversize_frame",
    "ws_text_header",
]
