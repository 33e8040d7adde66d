"""The proxy routes exactly: each client gets its events, in order, and no more.

The reference is a tap on the proxy's router: the upstream frames, recorded
as they arrive. From them each client's expected events are computed (the
events of its topics, in upstream order) and compared with what it got.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from massivekit.config import Market
from massivekit.mock.server import MockServer
from massivekit.models.routing import frame_events_raw
from massivekit.protocol.topics import PREFIXES
from massivekit.transport.events import ConnectionState

from .conftest import KEY
from .test_proxy_support import Client, clients, collect_frames, on_routing, proxy_for, wants

ALL_WILDCARDS = sorted(f"{p}.*" for p in PREFIXES[Market.STOCKS])
SETS = [
    ["T.*"],
    ["Q.*"],
    ["T.*", "Q.*"],
    ["T.AAPL", "Q.AAPL"],
    ["T.AAPL", "T.MSFT", "T.SPY", "T.QQQ", "T.TSLA"],
    ["T.*", "T.AAPL"],
    ["Q.MSFT", "T.*"],
    ["AM.*"],
    ["T.SPY", "Q.SPY", "AM.SPY"],
    ALL_WILDCARDS,
    ["Q.TSLA"],
    ["T.AAPL"],
]
_fields = msgspec.json.Decoder(dict[str, Any])


def contiguous(received: list[bytes], expected: list[bytes]) -> bool:
    """Whether ``expected`` appears in ``received`` as one unbroken run."""
    if not expected:
        return True
    start = received.index(expected[0])
    return received[start : start + len(expected)] == expected


def sequences_increase(events: list[bytes]) -> bool:
    """Per (ev, sym), the mock's sequence numbers ``q`` only go up."""
    last: dict[tuple[str, str], int] = {}
    for raw in events:
        fields = _fields.decode(raw)
        if "q" not in fields or "sym" not in fields:
            continue
        key = (fields["ev"], fields["sym"])
        if fields["q"] <= last.get(key, -1):
            return False
        last[key] = fields["q"]
    return True


async def test_every_client_gets_exactly_its_events(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        made: list[Client] = [await make(topics) for topics in SETS]
        upstream = proxy.upstreams[Market.STOCKS]
        assert upstream.topics == frozenset(ALL_WILDCARDS)  # the wildcards cover the rest
        await mock.wait_for(
            lambda: [s.protocol.topics for s in mock.sessions("stocks")] == [upstream.topics],
            within=5 * scale,
        )
        frames = await collect_frames(proxy, 3000, 10 * scale)
        events = [bytes(r) for f in frames for r in frame_events_raw(f)]
        for client in made:
            assert all(wants(client.topics, e) for e in client.events), client.topics
            expected = [e for e in events if wants(client.topics, e)]
            if not expected:  # aggregates come at second boundaries: maybe none in the window
                assert client.topics == ["AM.*"]
                continue
            await client.until(lambda c, last=expected[-1]: last in c.events, 10 * scale)  # type: ignore[misc]
            assert contiguous(client.events, expected), client.topics
            assert sequences_increase(client.events), client.topics
        everything = made[SETS.index(ALL_WILDCARDS)]
        assert contiguous(everything.frames, frames)  # whole frames, as they came
        assert proxy.routers[Market.STOCKS].whole_frames >= len(frames)


async def test_upstream_set_is_minimal_at_every_step(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async def upstream_is(*topics: str) -> None:
        wanted = frozenset(topics)
        assert proxy.upstreams[Market.STOCKS].topics == wanted
        await mock.wait_for(
            lambda: [s.protocol.topics for s in mock.sessions("stocks")] == [wanted],
            within=5 * scale,
        )

    async def unsubscribe(client: Client, topic: str) -> None:
        await client.send("unsubscribe", [topic])
        message = f"unsubscribed to: {topic}"
        await client.until(lambda c: any(s["message"] == message for s in c.statuses), 5 * scale)

    async with proxy_for(mock.url, KEY, grace=0) as proxy, clients(http, proxy) as make:
        a = await make(["T.AAPL", "Q.AAPL"])
        await upstream_is("T.AAPL", "Q.AAPL")
        b = await make(["T.AAPL", "T.MSFT"])
        await upstream_is("T.AAPL", "Q.AAPL", "T.MSFT")
        c = await make(["T.*"])
        await upstream_is("T.*", "Q.AAPL")
        d = await make(["T.*"])
        await upstream_is("T.*", "Q.AAPL")
        await unsubscribe(c, "T.*")
        await upstream_is("T.*", "Q.AAPL")
        await d.aclose()
        await upstream_is("T.AAPL", "Q.AAPL", "T.MSFT")
        await unsubscribe(a, "T.AAPL")
        await upstream_is("T.AAPL", "Q.AAPL", "T.MSFT")
        await b.aclose()
        await upstream_is("Q.AAPL")


async def test_grace_period_delays_upstream_unsubscribes(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    def mock_topics() -> frozenset[str]:
        sessions = mock.sessions("stocks")
        return sessions[0].protocol.topics if sessions else frozenset()

    async with proxy_for(mock.url, KEY, grace=0.5 * scale) as proxy, clients(http, proxy) as make:
        leaver = await make(["T.AAPL", "T.MSFT"])
        await mock.wait_for(lambda: mock_topics() == {"T.AAPL", "T.MSFT"}, within=5 * scale)
        upstream = proxy.upstreams[Market.STOCKS]
        await leaver.aclose()
        await on_routing(proxy, lambda: upstream.in_grace == {"T.AAPL", "T.MSFT"}, 5 * scale)
        assert upstream.topics == {"T.AAPL", "T.MSFT"}  # still held, for the grace period
        back = await make(["T.MSFT"])  # a client comes back for one of them
        await on_routing(proxy, lambda: upstream.grace_expired == 2, 5 * scale)
        await mock.wait_for(lambda: mock_topics() == {"T.MSFT"}, within=5 * scale)
        await back.until(lambda c: any(b'"sym":"MSFT"' in e for e in c.events), 5 * scale)


async def test_an_upstream_without_clients_closes_after_the_grace_and_comes_back(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with proxy_for(mock.url, KEY, grace=0.2 * scale) as proxy, clients(http, proxy) as make:
        first = await make(["T.*"])
        await first.until(lambda c: bool(c.events), 5 * scale)
        await first.aclose()
        # The key's one slot for the cluster is given back once nobody needs it.
        await mock.wait_for(lambda: not mock.sessions("stocks"), within=5 * scale)
        assert Market.STOCKS not in proxy.upstreams
        assert proxy.idle_closes[Market.STOCKS] == 1
        second = await make(["Q.*"])  # the next client opens it again
        await second.until(lambda c: bool(c.events), 5 * scale)
        assert proxy.upstreams[Market.STOCKS].topics == {"Q.*"}
        async with http.get(proxy.url + "/metrics") as response:
            text = await response.text()
        assert 'massivekit_proxy_upstream_idle_closes_total{cluster="stocks"} 1.0' in text


async def test_a_client_back_within_the_grace_keeps_the_upstream(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with proxy_for(mock.url, KEY, grace=30.0) as proxy, clients(http, proxy) as make:
        first = await make(["T.*"])
        await first.until(lambda c: bool(c.events), 5 * scale)
        upstream = proxy.upstreams[Market.STOCKS]
        await first.aclose()
        await on_routing(proxy, lambda: upstream.in_grace == {"T.*"}, 5 * scale)
        second = await make(["T.*"])
        await second.until(lambda c: bool(c.events), 5 * scale)
        assert proxy.upstreams[Market.STOCKS] is upstream
        assert upstream.conn.sessions == 1
        assert not proxy.idle_closes


async def test_a_client_arriving_while_the_idle_upstream_closes_waits_for_it(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    # One connection per cluster and key at a time: the new upstream starts
    # only once the idle one has closed (else Massive's max_connections).
    async with proxy_for(mock.url, KEY, grace=3600.0) as proxy, clients(http, proxy) as make:
        first = await make(["T.*"])
        await first.until(lambda c: bool(c.events), 5 * scale)
        await first.aclose()
        await mock.wait_for(lambda: len(mock.sessions("stocks")) == 1, within=5 * scale)
        old = proxy.upstreams[Market.STOCKS]
        proxy._cancel_idle(Market.STOCKS)  # the grace period ends now, in this loop turn
        proxy._close_if_idle(Market.STOCKS)
        order: list[tuple[str, ConnectionState]] = []
        old.conn.add_listener(lambda event: order.append(("old", event.state)))
        new = proxy.upstream(Market.STOCKS)  # a client needs the cluster again
        assert new is not None
        assert new is not old
        new.conn.add_listener(lambda event: order.append(("new", event.state)))
        second = await make(["Q.*"])
        await second.until(lambda c: bool(c.events), 5 * scale)
        closed = order.index(("old", ConnectionState.CLOSED))
        connecting = order.index(("new", ConnectionState.CONNECTING))
        assert closed < connecting, order
        assert len(mock.sessions("stocks")) == 1
