"""The mock Massive server: REST and WebSocket on one port, faults on demand.

Use it in-process::

    async with MockServer(keys=["test-key"], seed=7) as mock:
        mock.url                 # "http://127.0.0.1:PORT" (REST base URL)
        mock.ws_url("stocks")    # "ws://127.0.0.1:PORT/stocks"
        await mock.drop_connections()      # cut every socket, no close frame
        await mock.restart()               # stop listening, cut all, listen again

or as a process: ``massivekit mock --port 0 --key KEY``, which prints
``listening on http://HOST:PORT`` first. The same faults are reachable over
HTTP at ``POST /_mock/{action}`` (see :meth:`MockServer._control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Self

from aiohttp import WSMsgType, web

from massivekit.auth import get_logger
from massivekit.config import Market
from massivekit.mock.keys import KeyRing, KeySpec
from massivekit.mock.rest import RestFaults, add_rest_routes
from massivekit.mock.ws import (
    FloodFrames,
    FloodMode,
    Malformed,
    MarketFeed,
    MockSession,
    WsFaults,
    apply_events,
    cancel_quietly,
    disconnect,
    oversize_frame,
)
from massivekit.protocol.server import Authenticated, ServerProtocol
from massivekit.protocol.status import Status
from massivekit.sim.market import MarketSimulator

log = get_logger("massivekit.mock")


class MockServer:
    """A faithful stand-in for Massive, REST and WebSocket, on one loopback port.

    Args:
        keys: accepted keys, as strings or :class:`KeySpec` (clusters, refusals).
        host: interface to listen on.
        port: 0 picks a free port; :attr:`port` tells which after start.
        seed: makes the market and REST data reproducible.
        rate: simulated events per second per cluster.
        frame_events: most events in one frame.
        ws_faults: WebSocket fault switches (changeable while running).
        rest_faults: REST fault switches (changeable while running).
        flood: if set, no rate-driven feed: each session gets pre-rendered
            frames as fast as it reads once it subscribes (for benchmarks).
    """

    def __init__(
        self,
        keys: Iterable[str | KeySpec] = ("test-key",),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        rate: float = 1000.0,
        frame_events: int = 100,
        ws_faults: WsFaults | None = None,
        rest_faults: RestFaults | None = None,
        flood: FloodMode | None = None,
    ) -> None:
        self.keys = KeyRing(keys)
        self.host = host
        self.port = port
        self.seed = seed
        self.rate = rate
        self.frame_events = frame_events
        self.ws_faults = ws_faults or WsFaults()
        self.rest_faults = rest_faults or RestFaults()
        self.flood = flood
        self._flood_frames: dict[Market, FloodFrames] = {}
        self._sessions: dict[Market, list[MockSession]] = {m: [] for m in Market}
        self._feeds: dict[Market, MarketFeed] = {}
        self._tasks: dict[Market, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._changed = asyncio.Event()
        self.connections_total = 0

    # -- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The REST base URL (and the base of every stream URL)."""
        return f"http://{self.host}:{self.port}"

    def ws_url(self, market: Market | str) -> str:
        """The stream URL of a cluster, e.g. ``ws://127.0.0.1:PORT/stocks``."""
        return f"ws://{self.host}:{self.port}/{Market(market).value}"

    async def start(self) -> None:
        """Start listening; :attr:`port` holds the bound port afterwards."""
        app = web.Application(client_max_size=1024 * 1024)
        for market in Market:
            app.router.add_get(f"/{market.value}", self._ws_handler)
        app.router.add_post("/_mock/{action}", self._control)
        add_rest_routes(app, keys=self.keys.rest_allows, seed=self.seed, faults=self.rest_faults)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        # The runner knows the bound address on any event loop (uvloop's
        # servers are not asyncio.base_events.Server).
        self.port = int(self._runner.addresses[-1][1])

    async def aclose(self) -> None:
        """Stop everything: feeds, sessions, the listener."""
        for timer in self._timers:
            timer.cancel()
        self.drop_all_now()
        for market in list(self._tasks):
            await self._stop_feed(market)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- what tests look at ------------------------------------------------------

    def sessions(self, market: Market | str | None = None) -> list[MockSession]:
        """Open sessions, of one cluster or all."""
        if market is None:
            return [s for group in self._sessions.values() for s in group]
        return list(self._sessions[Market(market)])

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; it is checked at every session change.

        Raises:
            TimeoutError: it did not hold within ``within`` seconds.
        """
        async with asyncio.timeout(within):
            while not predicate():
                # Nothing runs between the check and the clear: no change is missed.
                self._changed.clear()
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    def feed(self, market: Market | str) -> MarketFeed | None:
        """The running feed of a cluster, if a client is connected to it."""
        return self._feeds.get(Market(market))

    # -- faults ---------------------------------------------------------------------

    def drop_all_now(self, market: Market | str | None = None) -> int:
        """Cut every connection (of one cluster) without a close frame."""
        victims = self.sessions(market)
        for session in victims:
            session.drop()
        return len(victims)

    async def drop_connections(self, market: Market | str | None = None) -> int:
        """Cut every connection without a close frame; returns how many."""
        return self.drop_all_now(market)

    async def close_connections(self, code: int = 1011, market: Market | str | None = None) -> int:
        """Close every connection with ``code`` (1011: server error)."""
        victims = self.sessions(market)
        await asyncio.gather(*(s.ws.close(code=code, message=b"mock close") for s in victims))
        return len(victims)

    def disconnect(self, status: Status, market: Market | str | None = None) -> int:
        """Send a disconnect status (``force_disconnect``, ...) then close."""
        victims = [s for s in self.sessions(market) if s.ready]
        for session in victims:
            disconnect(session, status)
        return len(victims)

    async def restart(self, downtime: float = 0.0) -> None:
        """Stop listening, cut every connection, wait ``downtime``, listen again."""
        if self._site is not None:
            await self._site.stop()
        self.drop_all_now()
        for market in list(self._tasks):
            await self._stop_feed(market)
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self._listen()

    def send_malformed(self, kind: Malformed, market: Market | str | None = None) -> int:
        """Send one bad frame to every ready session."""
        frame = oversize_frame(2 * 1024 * 1024) if kind is Malformed.OVERSIZE else kind.value
        victims = [s for s in self.sessions(market) if s.ready]
        for session in victims:
            session.offer(frame, limit=1 << 62)
        return len(victims)

    def inject(self, market: Market | str, frame: bytes) -> int:
        """Send ``frame`` as is to every ready session of a cluster."""
        victims = [s for s in self.sessions(market) if s.ready]
        for session in victims:
            session.offer(frame, limit=1 << 62)
        return len(victims)

    # -- WebSocket sessions ----------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        market = Market(request.path.lstrip("/"))
        ws = web.WebSocketResponse(max_msg_size=1024 * 1024, timeout=2.0)
        await ws.prepare(request)
        session = MockSession(ws, request, ServerProtocol(market, self.keys))
        self.connections_total += 1
        self._sessions[market].append(session)
        self._ensure_feed(market)
        self._notify()
        session.flush_protocol()
        writer = asyncio.create_task(session.write_loop(), name="mock-ws-writer")
        timer = asyncio.get_running_loop().call_later(
            self.ws_faults.auth_timeout, self._auth_timed_out, session
        )
        try:
            await self._read_loop(session, timer)
        finally:
            timer.cancel()
            await session.stop_flood()
            self._sessions[market].remove(session)
            await self._finish_writer(session, writer)
            if not self._sessions[market]:
                await self._stop_feed(market)
            self._notify()
        return ws

    async def _read_loop(self, session: MockSession, timer: asyncio.TimerHandle) -> None:
        async for msg in session.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if self.ws_faults.ignore_auth and not session.ready:
                continue
            events = session.protocol.receive(msg.data)
            if any(isinstance(e, Authenticated) for e in events):
                timer.cancel()
                self._enforce_connection_limit(session)
            keep = apply_events(session, events)
            if self.flood is not None and keep:
                self._maybe_flood(session)
            self._notify()
            if not keep:
                break

    async def _finish_writer(self, session: MockSession, writer: asyncio.Task[None]) -> None:
        if session.closing and not writer.done():
            # Let the status and close frame (or the cut) go out first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), timeout=0.5)
        await cancel_quietly(writer)

    def _maybe_flood(self, session: MockSession) -> None:
        """Start the flood of a session at its first subscription (flood mode)."""
        if self.flood is None or session.flooding or not session.ready:
            return
        if not session.protocol.topics:
            return
        frames = self._flood_frames.get(session.market)
        if frames is None:
            frames = FloodFrames(session.market, self.flood, self.seed)
            self._flood_frames[session.market] = frames
        session.start_flood(frames.chunks_for(session.protocol), loop=self.flood.loop)

    def _auth_timed_out(self, session: MockSession) -> None:
        apply_events(session, session.protocol.auth_timed_out())

    def _enforce_connection_limit(self, session: MockSession) -> None:
        family = session.market.family
        same_key = [
            s
            for s in self.sessions()
            if s.ready and s.principal == session.principal and s.market.family == family
        ]
        excess = len(same_key) - self.ws_faults.max_connections
        if excess <= 0:
            return
        same_key.sort(key=lambda s: s.opened)
        victims = same_key[-excess:] if self.ws_faults.evict == "newest" else same_key[:excess]
        for victim in victims:
            log.debug("= max_connections: cutting the %s connection", self.ws_faults.evict)
            disconnect(victim, Status.MAX_CONNECTIONS)

    def _on_slow(self, session: MockSession) -> None:
        session.discard_queued()
        disconnect(session, Status.SLOW_CONSUMER)
        self._notify()
        grace = self.ws_faults.slow_consumer_grace
        handle = asyncio.get_running_loop().call_later(grace, session.drop)
        self._timers.add(handle)

    # -- feeds --------------------------------------------------------------------------

    def _ensure_feed(self, market: Market) -> None:
        if market in self._tasks or self.flood is not None:
            return
        feed = MarketFeed(
            market,
            MarketSimulator(market, seed=self.seed),
            lambda: self._sessions[market],
            rate=self.rate,
            frame_events=self.frame_events,
            on_slow=self._on_slow,
            slow_limit=lambda: self.ws_faults.slow_consumer_bytes,
        )
        self._feeds[market] = feed
        self._tasks[market] = asyncio.create_task(feed.run(), name=f"mock-feed-{market.value}")

    async def _stop_feed(self, market: Market) -> None:
        task = self._tasks.pop(market, None)
        self._feeds.pop(market, None)
        if task is not None:
            await cancel_quietly(task)

    # -- HTTP control ---------------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        """``POST /_mock/{action}``: drop, close, restart, disconnect, malformed, faults."""
        action = request.match_info["action"]
        params = await request.json() if request.can_read_body else {}
        market = params.get("market")
        try:
            result = await self._run_control(action, params, market)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"action": action, "result": result})

    async def _run_control(self, action: str, params: dict[str, object], market: object) -> object:
        target = None if market is None else Market(str(market))
        if action == "drop":
            return await self.drop_connections(target)
        if action == "close":
            return await self.close_connections(int(str(params.get("code", 1011))), target)
        if action == "restart":
            await self.restart(float(str(params.get("downtime", 0))))
            return "restarted"
        if action == "disconnect":
            return self.disconnect(Status(str(params.get("status", "force_disconnect"))), target)
        if action == "malformed":
            return self.send_malformed(Malformed[str(params.get("kind", "NOT_JSON"))], target)
        if action == "faults":
            return self._set_faults(params)
        raise ValueError(f"unknown action {action!r}")

    def _set_faults(self, params: dict[str, object]) -> dict[str, object]:
        for name, value in params.items():
            if name == "market":
                continue
            if hasattr(self.ws_faults, name):
                setattr(self.ws_faults, name, value)
            elif hasattr(self.rest_faults, name):
                setattr(self.rest_faults, name, value)
            else:
                raise KeyError(f"no fault named {name!r}")
        return json.loads(json.dumps(vars(self.ws_faults), default=str))  # type: ignore[no-any-return]


def parse_markets(values: Sequence[str]) -> frozenset[Market]:
    """Parse cluster names as given on a command line."""
    return frozenset(Market(v) for v in values)
