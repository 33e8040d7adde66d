"""The multiplexing proxy: one upstream connection per cluster, many clients.

:class:`ProxyServer` is an aiohttp application on one TCP port and, when
configured, a Unix stream socket too (the same application on both):

* ``/stocks``, ``/options``, ``/forex``, ``/crypto``, ``/indices``,
  ``/futures`` (and ``/futures/cme|cbot|nymex|comex``): the Massive
  WebSocket protocol, unchanged, for clients holding proxy keys;
* ``/health``, ``/health/upstream``, ``/health/clients``: JSON;
* ``/metrics``: Prometheus text (:mod:`massivekit.proxy.metrics`);
* ``/admin/...``: commands behind ``Authorization: Bearer <admin-token>``
  (:mod:`massivekit.proxy.admin`).

The Unix socket is for clients on the proxy's host: their writes and reads
skip the TCP stack. Its file is made mode ``0o660`` (owner and group) once
bound, and removed when the proxy closes; a stale one left by a crashed proxy
is replaced, anything else at the path is refused (:class:`ConfigError`).

Data path: the upstream :class:`~massivekit.transport.connection.Connection`
hands each frame to the cluster's :class:`~massivekit.proxy.router.Router`,
which appends raw event slices to client buffers; the
:class:`~massivekit.proxy.downstream.Flusher` writes each client once per
loop turn. Usable in-process like the mock::

    async with ProxyServer(upstream_url=mock.url, upstream_key="k",
                           client_keys=["client-key"]) as proxy:
        proxy.ws_url("stocks")
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import socket
import stat
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from massivekit.auth import ApiKey, get_logger, redact_url
from massivekit.config import Market
from massivekit.errors import ConfigError
from massivekit.protocol.server import (
    MAX_ACTION_BYTES,
    Authenticated,
    ServerEvent,
    ServerProtocol,
    TopicsAdded,
    TopicsRemoved,
)
from massivekit.protocol.status import Status
from massivekit.proxy import admin
from massivekit.proxy.auth import ProxyAuthenticator
from massivekit.proxy.config import ClientKey, ProxyConfig, SlowClientPolicy, stream_url
from massivekit.proxy.downstream import CLOSE_GOING_AWAY, ClientSession, Flusher
from massivekit.proxy.inject import TestFeed
from massivekit.proxy.metrics import ProxyMetrics
from massivekit.proxy.router import Router
from massivekit.proxy.upstream import Upstream
from massivekit.transport.config import ConnectionConfig
from massivekit.transport.socket import SocketConnector

__all__ = ["ProxyServer"]

_log = get_logger("massivekit.proxy")

UNIX_MODE = 0o660
"""The Unix socket file's mode: connecting needs write permission, so owner and group."""


class ProxyServer:
    """The proxy, as an async context manager (or :meth:`start` / :meth:`aclose`).

    Args:
        config: the full configuration; the keyword arguments below override it.
        upstream_url: base URL of the upstream (``http://127.0.0.1:9000`` for
            the mock); real Massive by default.
        upstream_key: the upstream API key.
        client_keys: proxy keys, as strings (every cluster) or :class:`ClientKey`.
        admin_token: the admin bearer token.
        grace: seconds an upstream subscription outlives its last client.
        slow_client: ``drop_oldest`` or ``disconnect``.
        buffer_bytes: each client's send buffer.
        host: interface to listen on.
        port: 0 picks a free port (:attr:`port` tells which).
        unix_path: a filesystem path to listen on as a Unix socket as well
            (``config.unix``; ``None``: TCP only).
        upstream_config: the upstream connections' timeouts and policies.
        connector: the upstream WebSocket adapter.
    """

    def __init__(
        self,
        config: ProxyConfig | None = None,
        *,
        upstream_url: str | None = None,
        upstream_key: str | ApiKey | None = None,
        client_keys: Iterable[str | ClientKey] = (),
        admin_token: str | ApiKey | None = None,
        grace: float | None = None,
        slow_client: SlowClientPolicy | str | None = None,
        buffer_bytes: int | None = None,
        host: str | None = None,
        port: int | None = None,
        unix_path: str | os.PathLike[str] | None = None,
        upstream_config: ConnectionConfig | None = None,
        connector: SocketConnector | None = None,
    ) -> None:
        cfg = config or ProxyConfig()
        changes: dict[str, Any] = {
            "upstream": upstream_url,
            "upstream_key": None if upstream_key is None else ApiKey.coerce(upstream_key),
            "admin_token": None if admin_token is None else ApiKey.coerce(admin_token),
            "grace": grace,
            "slow_client": None if slow_client is None else SlowClientPolicy(slow_client),
            "buffer_bytes": buffer_bytes,
            "host": host,
            "port": port,
            "unix": None if unix_path is None else os.fspath(unix_path),
        }
        cfg = dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
        extra = tuple(k if isinstance(k, ClientKey) else ClientKey(ApiKey(k)) for k in client_keys)
        self.config = dataclasses.replace(
            cfg, client_keys=cfg.client_keys + extra, unix=cfg.unix or None
        )
        self.host = self.config.host
        self.port = self.config.port
        self.authenticator = ProxyAuthenticator(self.config.client_keys)
        self._upstream_config = upstream_config or ConnectionConfig(
            silence_timeout=self.config.upstream_silence, later_delay=self.config.later_delay
        )
        self._connector = connector
        self.routers: dict[Market, Router] = {}
        self.upstreams: dict[Market, Upstream] = {}
        self.sessions: dict[int, ClientSession] = {}
        self.slow_disconnects: Counter[Market] = Counter()
        self._departed_drops: Counter[Market] = Counter()
        self.connections_total = 0
        self.idle_closes: Counter[Market] = Counter()
        self.retired: defaultdict[Market, Counter[str]] = defaultdict(Counter)
        """Counters of upstreams closed for idleness, per cluster (metrics add them)."""
        self._idle: dict[Market, asyncio.TimerHandle] = {}
        self._closing: dict[Market, asyncio.Task[None]] = {}
        self.draining = False
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._unix_site: web.UnixSite | None = None
        self._unix_identity: tuple[int, int] | None = None
        """(st_dev, st_ino) of the socket file this proxy bound: the one it may remove."""
        self._flusher: Flusher | None = None
        self.metrics = ProxyMetrics(self)
        self.test_feed = TestFeed(self._note_received)

    def __repr__(self) -> str:
        unix = "" if self.unix_path is None else f", unix={self.unix_path}"
        return f"ProxyServer({self.url}{unix}, clients={len(self.sessions)})"

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, ``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def unix_path(self) -> str | None:
        """The Unix socket's path (``None`` without one): clients connect with
        ``aiohttp.UnixConnector(path=...)`` and URLs such as ``ws://localhost/stocks``."""
        return self.config.unix

    def ws_url(self, market: Market | str) -> str:
        """A cluster's WebSocket URL, e.g. ``ws://127.0.0.1:PORT/stocks``."""
        return f"ws://{self.host}:{self.port}/{Market(market).value}"

    @property
    def flusher(self) -> Flusher:
        """The write scheduler (exists once started)."""
        assert self._flusher is not None, "start the proxy first"
        return self._flusher

    async def start(self) -> None:
        """Listen; :attr:`port` holds the bound port afterwards.

        Raises:
            ConfigError: the Unix path cannot be taken: something other than a
                socket is there, a live process listens on it, or binding
                failed (no such directory, no permission, a path too long).
        """
        if self.config.unix is not None:
            _check_unix_path(self.config.unix)  # before anything listens: nothing to undo
        self._flusher = Flusher(
            self.metrics.observe_round,
            interval=self.config.flush_interval,
            duty=self.config.flush_duty,
        )
        app = web.Application(client_max_size=64 * 1024)
        for market in Market:
            app.router.add_get(f"/{market.value}", self._ws_handler)
        admin.add_routes(app, self)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        # The runner knows the bound address on any event loop (uvloop's
        # servers are not asyncio.base_events.Server).
        self.port = int(self._runner.addresses[-1][1])
        if self.config.unix is not None:
            try:
                await self._listen_unix(self.config.unix)
            except BaseException:
                await self.aclose()  # the TCP site must not outlive a failed start
                raise
        if self.config.upstream_key is None:
            _log.warning("= no upstream key: clients get no upstream data (test mode only)")
        if self.config.test_mode:
            await self.test_feed.enable(self.config.scenario)
        _log.info(
            "= proxy listening on %s%s, upstream %s",
            self.url,
            "" if self.config.unix is None else f" and unix:{self.config.unix}",
            redact_url(self.config.upstream),
        )

    async def _listen_unix(self, path: str) -> None:
        assert self._runner is not None
        site = web.UnixSite(self._runner, path)
        try:
            await site.start()
            self._unix_site = site
            bound = os.stat(path)
            self._unix_identity = (bound.st_dev, bound.st_ino)
            # Bound with the umask's mode; until this chmod a client the umask
            # allows may connect, and it still has to authenticate with a proxy key.
            os.chmod(path, UNIX_MODE)
        except OSError as exc:
            raise ConfigError(f"cannot listen on unix:{path}: {exc.strerror or exc}") from exc

    async def _stop_listening(self) -> None:
        """Stop accepting on both sites; remove the socket file if it is still ours."""
        sites: list[web.BaseSite | None] = [self._site, self._unix_site]
        self._site = self._unix_site = None
        for site in sites:
            if site is not None:
                await site.stop()
        identity, self._unix_identity = self._unix_identity, None
        path = self.config.unix
        if identity is None or path is None:
            return
        try:
            found = os.stat(path)
            # Another proxy may have taken the path since (a stale-file restart).
            if (found.st_dev, found.st_ino) == identity:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # closing goes on: a leftover file is replaced at the next start
            _log.warning("= could not remove unix:%s: %s", path, exc.strerror or exc)

    async def aclose(self) -> None:
        """Close everything at once (see :meth:`drain` for a graceful end)."""
        for market in list(self._idle):
            self._cancel_idle(market)
        if self._closing:
            await asyncio.wait(list(self._closing.values()))
        await self._stop_listening()
        for session in list(self.sessions.values()):
            session.request_close(CLOSE_GOING_AWAY, "proxy closing")
        await self.test_feed.aclose()
        for upstream in list(self.upstreams.values()):
            await upstream.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._flusher is not None:
            self._flusher.close()

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop accepting, flush buffers within ``timeout``, close clients with 1001.

        Args:
            timeout: seconds for the flush (``config.drain_timeout`` by default).
        """
        self.draining = True
        limit = self.config.drain_timeout if timeout is None else timeout
        await self._stop_listening()  # no new connections from here on, on either socket
        await self.test_feed.aclose()
        self.flusher.flush()
        async with asyncio.timeout(limit + 1.0):
            await self._wait_flushed(limit)
        for session in list(self.sessions.values()):
            session.request_close(CLOSE_GOING_AWAY, "proxy shutting down")
        await self.aclose()

    async def _wait_flushed(self, limit: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            waiting = [
                s for s in self.sessions.values() if s.pending_bytes or s.transport_buffered()
            ]
            if not waiting:
                return
            for session in waiting:
                session.write(force=True)
            await asyncio.sleep(0.01)  # polls the kernel's progress: there is no event for it

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

    # -- clusters --------------------------------------------------------------------------

    def router(self, market: Market) -> Router:
        """The router of ``market`` (made on first use)."""
        router = self.routers.get(market)
        if router is None:
            router = self.routers[market] = Router(on_output=self._schedule_writes)
            self.test_feed.attach(market, router)
        return router

    def upstream(self, market: Market) -> Upstream | None:
        """The upstream of ``market``, opened on first use (``None`` without an upstream key)."""
        upstream = self.upstreams.get(market)
        if upstream is None and self.config.upstream_key is not None:
            upstream = Upstream(
                market,
                stream_url(self.config.upstream, market),
                self.config.upstream_key,
                self.router(market),
                self.flusher,
                grace=self.config.grace,
                config=self._upstream_config,
                connector=self._connector,
                on_refused=functools.partial(self._upstream_refused, market),
            )
            self.upstreams[market] = upstream
            closing = self._closing.get(market)
            if closing is None:
                upstream.start()
            else:  # the idle one is still closing: one connection per cluster at a time
                closing.add_done_callback(lambda _: upstream.start())
        return upstream

    def _upstream_refused(self, market: Market, owner: Hashable, lost: Mapping[str, str]) -> None:
        """The upstream refused topics a client was acked for: take them back, tell it."""
        session = self.sessions.get(owner) if isinstance(owner, int) else None
        if session is None:
            return  # it left meanwhile, and its topics with it
        self.router(market).unsubscribe(owner, list(lost))
        session.protocol.revoke(lost)
        session.flush_protocol()

    def _schedule_writes(self) -> None:
        if self._flusher is not None:
            self._flusher.schedule()

    def _note_received(self) -> None:
        if self._flusher is not None:
            self._flusher.note_received()

    def dropped_events(self, market: Market) -> int:
        """Events dropped from full buffers on ``market``, departed clients included."""
        live = sum(s.dropped_events for s in self.sessions.values() if s.market is market)
        return live + self._departed_drops[market]

    # -- downstream --------------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        market = Market(request.path.strip("/"))
        if self.draining:
            raise web.HTTPServiceUnavailable(text="proxy is shutting down")
        ws = web.WebSocketResponse(
            max_msg_size=MAX_ACTION_BYTES * 2, compress=False, timeout=2.0, autoping=True
        )
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # gone before its 101: not the proxy's error to log
            _log.debug("= a client at %s left during the upgrade", _peer(request))
            return web.Response()  # aiohttp's writing it fails quietly: the socket is gone
        transport = request.transport
        if transport is None:
            return ws
        session = ClientSession(
            market,
            ServerProtocol(market, self.authenticator),
            ws,
            transport,
            self.flusher,
            policy=self.config.slow_client,
            buffer_bytes=self.config.buffer_bytes,
            peer=_peer(request),
        )
        self.sessions[session.id] = session
        self.connections_total += 1
        try:
            await session.serve(
                self._on_client_events, auth_timeout=self.config.auth_timeout, close_timeout=2.0
            )
        finally:
            await self._client_left(session)
        return ws

    async def _on_client_events(self, session: ClientSession, events: list[ServerEvent]) -> None:
        market = session.market
        for event in events:
            if isinstance(event, Authenticated):
                self.router(market).add_client(
                    session.id, session.enqueue, session.mark, sink=session.sink
                )
                self._cancel_idle(market)
                self.upstream(market)
                _log.debug("= client #%s (%s) on %s", session.id, event.principal, market.value)
            elif isinstance(event, TopicsAdded):
                self.router(market).subscribe(session.id, event.topics)
                upstream = self.upstream(market)
                if upstream is not None:
                    await upstream.hold(session.id, event.topics)
            elif isinstance(event, TopicsRemoved):
                self.router(market).unsubscribe(session.id, event.topics)
                upstream = self.upstreams.get(market)
                if upstream is not None:
                    await upstream.release(session.id, event.topics)

    async def _client_left(self, session: ClientSession) -> None:
        self.sessions.pop(session.id, None)
        market = session.market
        self._departed_drops[market] += session.dropped_events
        if session.close_reason == Status.SLOW_CONSUMER:
            self.slow_disconnects[market] += 1
        router = self.routers.get(market)
        if router is not None:
            router.remove_client(session.id)
        upstream = self.upstreams.get(market)
        if upstream is not None:
            await upstream.release_all(session.id)
            if router is not None and not router.clients and not self.draining:
                self._schedule_idle(market)

    # -- idle upstreams ------------------------------------------------------------------------

    def _schedule_idle(self, market: Market) -> None:
        """The last client of ``market`` left: close its upstream after the grace period."""
        self._cancel_idle(market)
        self._idle[market] = asyncio.get_running_loop().call_later(
            self.config.grace, self._close_if_idle, market
        )

    def _cancel_idle(self, market: Market) -> None:
        timer = self._idle.pop(market, None)
        if timer is not None:
            timer.cancel()

    def _close_if_idle(self, market: Market) -> None:
        self._idle.pop(market, None)
        router = self.routers.get(market)
        upstream = self.upstreams.get(market)
        if upstream is None or (router is not None and router.clients):
            return
        # Nobody needs it: free the key's slot for this cluster (Massive allows
        # one); the next client opens it again.
        del self.upstreams[market]
        self.idle_closes[market] += 1
        retired = self.retired[market]  # counters never go down, whatever the connection
        retired["reconnects"] += upstream.reconnects
        retired["max_connections"] += upstream.max_connections
        retired["refused"] += upstream.refused
        _log.info("= %s: no clients for %.0fs: upstream closed", market.value, self.config.grace)
        task = asyncio.get_running_loop().create_task(upstream.aclose())
        self._closing[market] = task
        task.add_done_callback(functools.partial(self._closed_idle, market))

    def _closed_idle(self, market: Market, task: asyncio.Task[None]) -> None:
        if self._closing.get(market) is task:
            del self._closing[market]

    def disconnect_client(self, client_id: int) -> bool:
        """Close one client with ``force_disconnect`` (admin); ``False`` if unknown."""
        session = self.sessions.get(client_id)
        if session is None:
            return False
        session.disconnect(Status.FORCE_DISCONNECT)
        return True

    # -- views ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The summary of ``/health``."""
        upstreams = {m.value: u.health() for m, u in self.upstreams.items()}
        healthy = all(u["healthy"] for u in upstreams.values())
        return {
            "status": "draining" if self.draining else ("ok" if healthy else "degraded"),
            "clients": len(self.sessions),
            "connections_total": self.connections_total,
            "upstreams": {m: u["state"] for m, u in upstreams.items()},
            "max_connections": sum(u["max_connections"] for u in upstreams.values()),
            "test_mode": self.test_feed.enabled,
            "scenario": self.test_feed.scenario,
        }

    def clients_view(self) -> list[dict[str, Any]]:
        """One JSON-ready row per client (names of keys only, never keys)."""
        return [
            {
                "id": s.id,
                "cluster": s.market.value,
                "key_name": s.principal,
                "peer": s.peer,
                "connected_at": s.connected_at,
                "topics": sorted(s.protocol.topics),
                "frames_sent": s.frames_sent,
                "events_sent": s.events_sent,
                "bytes_sent": s.bytes_sent,
                "pending_bytes": s.pending_bytes,
                "dropped_frames": s.dropped_frames,
                "dropped_events": s.dropped_events,
            }
            for s in self.sessions.values()
        ]

    def subscriptions_view(self) -> dict[str, Any]:
        """Per cluster: the upstream set, the topics in grace, and per-client topics."""
        view: dict[str, Any] = {}
        for market, router in self.routers.items():
            upstream = self.upstreams.get(market)
            view[market.value] = {
                "upstream": sorted(upstream.topics) if upstream else [],
                "in_grace": sorted(upstream.in_grace) if upstream else [],
                "clients": {
                    str(s.id): sorted(s.protocol.topics)
                    for s in self.sessions.values()
                    if s.market is market
                },
                "topics": len(router.topics),
            }
        return view


def _peer(request: web.Request) -> str:
    """The client's address as shown in logs and ``/health/clients``.

    aiohttp's ``request.remote`` is the empty string for a Unix socket client
    (its socket has no name): such clients show as ``unix``.
    """
    transport = request.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        name = request.remote
        return f"unix:{name}" if name else "unix"
    return request.remote or ""


def _check_unix_path(path: str) -> None:
    """Refuse a Unix socket path the proxy must not take; a stale socket is fine.

    asyncio and uvloop remove any socket file at the path before binding,
    which replaces a stale one left by a crashed proxy, but also a live one: a
    second proxy given the same path would take it from the first without a
    word. A socket that still accepts a connection is therefore refused, as is
    anything that is not a socket (a file given by mistake is never removed).

    Raises:
        ConfigError: the path holds something that is not a socket, or a
            socket a process listens on (or that cannot be probed).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot use unix:{path}: {exc.strerror or exc}") from exc
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"unix:{path} exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)  # a full backlog answers EAGAIN instead of blocking
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # stale: nobody listens; binding replaces it
    except BlockingIOError:
        pass  # a listener whose backlog is full: live
    except OSError as exc:
        raise ConfigError(f"cannot use unix:{path}: {exc.strerror or exc}") from exc
    finally:
        probe.close()
    raise ConfigError(f"unix:{path} is in use by a running process")
