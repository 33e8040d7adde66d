"""Slow clients are isolated, and clients ride through upstream faults."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from massivekit.config import Market
from massivekit.mock.server import MockServer
from massivekit.models.routing import frame_events_raw
from massivekit.transport.events import ConnectionState

from .conftest import KEY, NO_QUOTES
from .test_proxy_routing import contiguous
from .test_proxy_support import (
    CLIENT_KEY,
    clients,
    collect_frames,
    on_routing,
    proxy_for,
    raw_slow_client,
    wants,
)

AUTH = b'{"action":"auth","params":"' + CLIENT_KEY.encode() + b'"}'
SUBSCRIBE_ALL = b'{"action":"subscribe","params":"T.*,Q.*"}'


@pytest.fixture
async def busy() -> AsyncIterator[MockServer]:
    """A mock fast enough to fill a slow client's socket buffers in about a second."""
    async with MockServer([KEY], seed=5, rate=30_000) as server:
        yield server


async def test_slow_client_drops_oldest_and_others_lose_nothing(
    busy: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with (
        proxy_for(busy.url, KEY, buffer_bytes=64 * 1024) as proxy,
        clients(http, proxy) as make,
    ):
        fast = await make(["T.*", "Q.*"])
        sock = await raw_slow_client(proxy.port, "/stocks", [AUTH, SUBSCRIBE_ALL])
        try:
            await on_routing(proxy, lambda: proxy.dropped_events(Market.STOCKS) > 0, 20 * scale)
            frames = await collect_frames(proxy, 2000, 10 * scale)
            expected = [bytes(r) for f in frames for r in frame_events_raw(f)]
            expected = [e for e in expected if wants(fast.topics, e)]
            await fast.until(lambda c: expected[-1] in c.events, 10 * scale)
            drops = sorted(s.dropped_events for s in proxy.sessions.values())
            assert drops[0] == 0, drops  # the fast client lost nothing
            assert contiguous(fast.events, expected)
            assert len(proxy.sessions) == 2  # the slow one is kept, losing its oldest frames
            slow = max(proxy.sessions.values(), key=lambda s: s.dropped_events)
            assert slow.dropped_frames > 0
            assert slow.pending_bytes <= 64 * 1024
            async with http.get(proxy.url + "/metrics") as response:
                text = await response.text()
            assert 'massivekit_proxy_dropped_events_total{cluster="stocks"}' in text
        finally:
            sock.close()


async def test_slow_client_gets_slow_consumer_and_is_closed(
    busy: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with (
        proxy_for(busy.url, KEY, buffer_bytes=32 * 1024, slow_client="disconnect") as proxy,
        clients(http, proxy) as make,
    ):
        fast = await make(["T.*"])
        sock = await raw_slow_client(proxy.port, "/stocks", [AUTH, SUBSCRIBE_ALL])
        try:
            await on_routing(proxy, lambda: proxy.slow_disconnects[Market.STOCKS] == 1, 20 * scale)
            assert len(proxy.sessions) == 1
            count = len(fast.events)
            await fast.until(lambda c: len(c.events) > count + 200, 10 * scale)
            assert fast.close_code is None
        finally:
            sock.close()


@pytest.mark.parametrize("fault", ["drop", "close_1011", "restart"])
async def test_clients_stay_through_upstream_faults(
    mock: MockServer, http: aiohttp.ClientSession, scale: float, fault: str
) -> None:
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        client = await make(["T.*"])
        await client.until(lambda c: len(c.events) > 10, 10 * scale)
        if fault == "drop":
            await mock.drop_connections()
        elif fault == "close_1011":
            await mock.close_connections(1011)
        else:
            await mock.restart(0.2 * scale)
        await client.until(lambda c: "upstream_restored" in c.status_names(), 10 * scale)
        assert client.status_names() == ["upstream_reconnecting", "upstream_restored"]
        assert client.statuses[0]["ev"] == "status"
        count = len(client.events)
        await client.until(lambda c: len(c.events) > count + 100, 10 * scale)
        assert client.close_code is None
        assert proxy.upstreams[Market.STOCKS].conn.sessions == 2
        assert proxy.upstreams[Market.STOCKS].reconnects >= 1


async def test_max_connections_upstream_is_loud_and_not_fought(
    mock: MockServer, http: aiohttp.ClientSession, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    mock.ws_faults.evict = "oldest"  # another program takes the key's slot from the proxy
    caplog.set_level(logging.ERROR, logger="massivekit.proxy")
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        client = await make(["T.*"])
        upstream = proxy.upstreams[Market.STOCKS]
        async with http.ws_connect(mock.ws_url("stocks")) as other:
            await other.receive()
            await other.send_str(f'{{"action":"auth","params":"{KEY}"}}')
            await client.until(lambda c: "upstream_reconnecting" in c.status_names(), 10 * scale)
            assert "max_connections" in client.statuses[0]["message"]
            assert upstream.max_connections == 1
            assert upstream.conn.state is ConnectionState.RECONNECTING  # waiting, not fighting
            assert any("max_connections" in r.getMessage() for r in caplog.records)
            async with http.get(proxy.url + "/health") as response:
                assert response.status == 503
                assert (await response.json())["max_connections"] == 1
            async with http.get(proxy.url + "/metrics") as response:
                text = await response.text()
            assert 'massivekit_proxy_upstream_max_connections_total{cluster="stocks"} 1.0' in text
            assert client.close_code is None


async def test_an_upstream_refusal_after_the_ack_is_told_and_taken_back(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    # The proxy's own key may take quotes; its upstream key may not. The
    # client is acked at once (as Massive would), then told when the
    # upstream refuses, and the topic leaves its set and the proxy's.
    async with proxy_for(mock.url, NO_QUOTES) as proxy, clients(http, proxy) as make:
        client = await make(["T.AAPL", "Q.AAPL"])
        other = await make(["Q.AAPL"])
        for each in (client, other):
            await each.until(lambda c: "error" in c.status_names(), 10 * scale)
            (error,) = [s for s in each.statuses if s["status"] == "error"]
            assert error["message"] == "upstream refused Q.AAPL: not authorized"
        upstream = proxy.upstreams[Market.STOCKS]
        assert upstream.topics == frozenset({"T.AAPL"})
        assert proxy.routers[Market.STOCKS].topics == frozenset({"T.AAPL"})
        assert upstream.health()["refused"] == 2
        await client.send("subscribe", ["Q.AAPL"])  # asked again: answered again, refused again
        await client.until(lambda c: c.status_names().count("error") == 2, 10 * scale)
