"""Shared pieces of the proxy's functional tests (no tests here).

``Client`` is a minimal downstream client on aiohttp that records every data
event it receives as raw bytes, and every status; ``raw_client`` opens a
WebSocket by hand on a socket with a tiny receive buffer and then never
reads (the slow consumer).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec

from massivekit.config import Market
from massivekit.models.routing import frame_events_raw, key_of, topic_of
from massivekit.protocol.topics import covers
from massivekit.proxy.server import ProxyServer
from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.config import ConnectionConfig

CLIENT_KEY = "proxy-client-key"
ADMIN = "proxy-admin-token"
QUICK = ConnectionConfig(
    backoff=BackoffPolicy(initial=0.02, max_delay=0.1, jitter=False), later_delay=60.0
)
_status = msgspec.json.Decoder(dict[str, Any])


def wants(topics: Iterable[str], raw: bytes) -> bool:
    """Whether an event belongs to one of ``topics``."""
    ev, instrument = key_of(raw)
    topic = topic_of(ev, instrument)
    return topic is not None and any(covers(held, topic) for held in topics)


async def on_routing(
    proxy: ProxyServer,
    predicate: Callable[[], bool],
    within: float,
    market: Market = Market.STOCKS,
) -> None:
    """Wait until ``predicate()`` holds, checked each time the proxy routes an upstream frame.

    Drops, slow-client cuts and grace expiry happen while frames flow (the
    mock never stops sending), so the next routed frame is the event that
    tells; there is no timed polling.
    """
    if predicate():
        return
    done = asyncio.Event()

    def check(frame: bytes) -> None:
        if predicate():
            done.set()

    router = proxy.routers[market]
    router.taps.append(check)
    try:
        async with asyncio.timeout(within):
            await done.wait()
    finally:
        router.taps.remove(check)


async def collect_frames(proxy: ProxyServer, events: int, within: float) -> list[bytes]:
    """The upstream stocks frames the proxy routes until they hold ``events`` events."""
    frames: list[bytes] = []
    seen = 0
    enough = asyncio.Event()

    def record(frame: bytes) -> None:
        nonlocal seen
        frames.append(frame)
        seen += frame.count(b'"ev"')
        if seen >= events:
            enough.set()

    router = proxy.routers[Market.STOCKS]
    router.taps.append(record)
    try:
        async with asyncio.timeout(within):
            await enough.wait()
    finally:
        router.taps.remove(record)
    return frames


class Client:
    """A downstream client that records what it gets."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, topics: list[str]) -> None:
        self.ws = ws
        self.topics = topics
        self.events: list[bytes] = []
        self.frames: list[bytes] = []
        self.statuses: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def handshake(self, key: str = CLIENT_KEY) -> list[dict[str, Any]]:
        """Read ``connected``, send auth; returns the statuses of both answers."""
        return [*await self._statuses(), *await self._send({"action": "auth", "params": key})]

    async def subscribe(self, topics: list[str]) -> list[dict[str, Any]]:
        """Subscribe; returns the answer's statuses (before reading starts)."""
        self.topics = [*self.topics, *topics]
        return await self._send({"action": "subscribe", "params": ",".join(topics)})

    async def send(self, action: str, topics: list[str]) -> None:
        """Send an action while the reader runs (its answers land in ``statuses``)."""
        await self.ws.send_str(
            msgspec.json.encode({"action": action, "params": ",".join(topics)}).decode()
        )

    async def _send(self, action: dict[str, str]) -> list[dict[str, Any]]:
        await self.ws.send_str(msgspec.json.encode(action).decode())
        return await self._statuses()

    async def _statuses(self) -> list[dict[str, Any]]:
        message = await self.ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return [_status.decode(raw) for raw in frame_events_raw(message.data)]

    def start(self) -> None:
        """Read in the background from now on."""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = message.data.encode()
            raws = [bytes(r) for r in frame_events_raw(data)]
            if raws and raws[0].startswith(b'{"ev":"status"'):
                self.statuses.extend(_status.decode(r) for r in raws)
            else:
                self.frames.append(data)
                self.events.extend(raws)
            self._changed.set()
        self.close_code = self.ws.close_code
        self._changed.set()

    async def until(self, predicate: Callable[[Client], bool], within: float) -> None:
        """Wait until ``predicate(self)`` holds, woken by each message."""
        async with asyncio.timeout(within):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    def status_names(self) -> list[str]:
        """The ``status`` of every status event received while reading."""
        return [s.get("status", "") for s in self.statuses]

    async def aclose(self) -> None:
        """Close and stop reading."""
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


@asynccontextmanager
async def clients(
    http: aiohttp.ClientSession, proxy: ProxyServer, market: str = "stocks"
) -> AsyncIterator[Callable[..., Any]]:
    """A factory of authenticated, subscribed clients, all closed at the end."""
    made: list[Client] = []

    async def make(topics: list[str], *, key: str = CLIENT_KEY, start: bool = True) -> Client:
        client = Client(await http.ws_connect(proxy.ws_url(market)), [])
        made.append(client)
        statuses = await client.handshake(key)
        assert statuses[-1]["status"] == "auth_success", statuses
        if topics:
            acks = await client.subscribe(topics)
            assert len(acks) == len(topics), acks
        if start:
            client.start()
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.aclose()


def proxy_for(mock_url: str, upstream_key: str, **kwargs: Any) -> ProxyServer:
    """A proxy in front of the mock, with quick reconnects and test keys."""
    kwargs.setdefault("client_keys", [CLIENT_KEY])
    kwargs.setdefault("admin_token", ADMIN)
    kwargs.setdefault("upstream_config", QUICK)
    return ProxyServer(upstream_url=mock_url, upstream_key=upstream_key, **kwargs)


async def raw_slow_client(port: int, path: str, actions: list[bytes]) -> socket.socket:
    """Open a WebSocket by hand with a tiny receive buffer, send ``actions``, never read.

    The caller closes the returned socket.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)
        assert chunk, "the proxy closed during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    for action in actions:
        await loop.sock_sendall(sock, _masked_text(action))
    return sock


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    header = (
        bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0xFE)) + size.to_bytes(2, "big")
    )
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
