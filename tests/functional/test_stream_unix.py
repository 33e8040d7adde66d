"""StreamClient through the proxy's Unix socket, on both socket adapters.

Socket paths live in a fresh directory under ``/tmp``: an ``AF_UNIX`` path
holds at most 107 bytes, which pytest's ``tmp_path`` can exceed. No test
sleeps: each awaits a batch, a connection event or a routed frame, within a
bounded time.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from massivekit.errors import TransportError
from massivekit.mock.server import MockServer
from massivekit.models import EquityQuote, EquityTrade
from massivekit.proxy.downstream import ClientSession
from massivekit.proxy.server import ProxyServer
from massivekit.stream import ConnectionEvent, ConnectionState, StreamClient, StreamOptions
from massivekit.transport import socket_picows
from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.connection import ConnectionConfig
from massivekit.transport.socket import SocketConnector, aiohttp_connector
from massivekit.transport.socket_picows import PicowsConnector, picows_connector

from .conftest import KEY
from .test_proxy_support import CLIENT_KEY, on_routing, proxy_for

CONNECTORS: dict[str, Callable[..., SocketConnector]] = {
    "aiohttp": aiohttp_connector,
    "picows": picows_connector,
}
QUICK = ConnectionConfig(backoff=BackoffPolicy(initial=0.01, max_delay=0.05, jitter=False))


@pytest.fixture
def t(scale: float) -> float:
    return 10.0 * scale


def over_unix(library: str, path: str) -> StreamOptions:
    return StreamOptions(transport=QUICK, connector=CONNECTORS[library](unix_path=path))


def only_client(proxy: ProxyServer) -> ClientSession:
    (session,) = proxy.sessions.values()
    return session


async def first_failure(client: StreamClient, within: float) -> ConnectionEvent:
    """The event of the client's first failed attempt (``connect()`` returns on it)."""
    seen: list[ConnectionEvent] = []
    client.add_listener(seen.append)
    async with asyncio.timeout(within):
        await client.connect()
    return next(e for e in seen if e.state is ConnectionState.RECONNECTING)


@pytest.mark.parametrize("library", sorted(CONNECTORS))
async def test_subscribe_receive_unsubscribe_over_the_unix_socket(
    mock: MockServer, sock_path: str, t: float, library: str
) -> None:
    options = over_unix(library, sock_path)
    async with (
        asyncio.timeout(3 * t),
        proxy_for(mock.url, KEY, unix_path=sock_path) as proxy,
        StreamClient(CLIENT_KEY, url="ws://localhost/stocks", options=options) as client,
    ):
        session = only_client(proxy)
        assert session.peer == "unix"  # not over TCP
        await client.subscribe("T.*", "Q.*", confirm=True)
        kinds: set[type] = set()
        async for batch in client:
            kinds.update(type(e) for e in batch)
            if {EquityTrade, EquityQuote} <= kinds:
                break
        assert client.stats.bytes > 0
        await client.unsubscribe("T.*")
        await on_routing(proxy, lambda: "T.*" not in session.protocol.topics, t)
        assert session.protocol.topics == {"Q.*"}
        async for batch in client:  # the stream goes on with what is left
            if any(isinstance(e, EquityQuote) for e in batch):
                break


async def test_unix_path_on_the_client(mock: MockServer, sock_path: str, t: float) -> None:
    client = StreamClient(CLIENT_KEY, unix_path=sock_path, options=StreamOptions(transport=QUICK))
    assert client.url == "ws://localhost/stocks"  # the default URL; its host is the Host header
    assert client.unix_path == sock_path
    assert f"unix:{sock_path}" in repr(client)
    assert CLIENT_KEY not in repr(client)
    async with (
        asyncio.timeout(3 * t),
        proxy_for(mock.url, KEY, unix_path=sock_path) as proxy,
        client,
    ):
        assert only_client(proxy).peer == "unix"
        await client.subscribe("T.*", confirm=True)
        batch = await anext(aiter(client))
        assert batch
        assert all(isinstance(e, EquityTrade) for e in batch)


@pytest.mark.parametrize("library", sorted(CONNECTORS))
@pytest.mark.parametrize("how", ["missing", "refused"])
async def test_no_server_at_the_path_fails_as_a_refused_tcp_port(
    sock_path: str, unused_tcp_port: int, t: float, library: str, how: str
) -> None:
    if how == "refused":  # a stale socket file: nobody listens on it
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(sock_path)
        stale.close()
    tcp_options = StreamOptions(transport=QUICK, connector=CONNECTORS[library]())
    tcp = StreamClient(
        CLIENT_KEY, url=f"ws://127.0.0.1:{unused_tcp_port}/stocks", options=tcp_options
    )
    unix = StreamClient(
        CLIENT_KEY, url="ws://localhost/stocks", options=over_unix(library, sock_path)
    )
    try:
        over_tcp = await first_failure(tcp, t)
        over_unix_socket = await first_failure(unix, t)
    finally:
        await tcp.aclose()
        await unix.aclose()
    assert over_unix_socket.reason == over_tcp.reason == "connect_failed"
    assert isinstance(over_tcp.error, TransportError)
    assert type(over_unix_socket.error) is type(over_tcp.error)
    message = str(over_unix_socket.error)
    assert f"unix:{sock_path}" in message
    assert "Error" in message  # FileNotFoundError / ConnectionRefusedError: the cause is told
    assert CLIENT_KEY not in message


def test_picows_refuses_a_unix_socket_where_tcp_options_would_fail(
    monkeypatch: pytest.MonkeyPatch, sock_path: str
) -> None:
    """On uvloop without aiofastnet picows' TCP_NODELAY would hit the kernel: say so at once."""
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.setattr(socket_picows, "_AIOFASTNET", False)

    async def attempt() -> None:
        async with asyncio.timeout(10):
            await PicowsConnector(unix_path=sock_path).connect(
                "ws://localhost/stocks", _NoListener(), timeout=5
            )

    with pytest.raises(TransportError, match="aiofastnet") as refused:
        uvloop.run(attempt())
    assert f"unix:{sock_path}" in str(refused.value)


async def _one_batch_on_uvloop(path: str) -> tuple[str, int]:
    async with (
        asyncio.timeout(30),
        MockServer([KEY], rate=5_000) as mock,
        proxy_for(mock.url, KEY, unix_path=path) as proxy,
        StreamClient(CLIENT_KEY, unix_path=path, options=StreamOptions(transport=QUICK)) as client,
    ):
        await client.subscribe("T.*", confirm=True)
        batch = await anext(aiter(client))
        return only_client(proxy).peer, len(batch)


def test_picows_over_the_unix_socket_on_uvloop(sock_path: str) -> None:
    """As ``run()`` and the CLI run it: uvloop, picows (with aiofastnet)."""
    uvloop = pytest.importorskip("uvloop")
    if not socket_picows._AIOFASTNET:
        pytest.skip("picows over a Unix socket on uvloop needs aiofastnet")
    peer, events = uvloop.run(_one_batch_on_uvloop(sock_path))
    assert peer == "unix"
    assert events > 0


class _NoListener:
    """A SocketListener for connects that must fail before any message."""

    def on_message(self, data: bytes | str, binary: bool) -> None:
        raise AssertionError("no message expected")

    def on_closed(self, code: int | None, reason: str, error: BaseException | None) -> None:
        raise AssertionError("no connection expected")

    def on_pong(self) -> None:
        raise AssertionError("no pong expected")
