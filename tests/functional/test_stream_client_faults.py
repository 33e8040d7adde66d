"""StreamClient under every fault the mock can inject: it reconnects, backs off, or raises.

No test sleeps to let things happen: each awaits a connection event, a
batch, or a condition on the mock, within a bounded time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from massivekit.errors import (
    AuthError,
    BufferOverflow,
    Disconnected,
    RequestTimeout,
    StreamClosed,
    SubscriptionRefused,
)
from massivekit.mock.keys import KeySpec
from massivekit.mock.server import MockServer
from massivekit.mock.ws import Malformed
from massivekit.models import EquityTrade, UnknownEvent
from massivekit.protocol.status import Status
from massivekit.stream import (
    ConnectionEvent,
    ConnectionState,
    Overflow,
    StreamClient,
    StreamOptions,
)
from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.connection import ConnectionConfig, Heartbeat
from massivekit.transport.socket import aiohttp_connector
from massivekit.transport.socket_picows import picows_connector

from .conftest import KEY, NO_QUOTES, STOCKS_ONLY

QUICK = BackoffPolicy(initial=0.01, max_delay=0.05, jitter=False)


def options(**transport: Any) -> StreamOptions:
    transport.setdefault("backoff", QUICK)
    return StreamOptions(transport=ConnectionConfig(**transport))


@pytest.fixture
def t(scale: float) -> float:
    return 10.0 * scale


@pytest.fixture
async def busy() -> AsyncIterator[MockServer]:
    async with MockServer(
        [KeySpec(KEY), KeySpec(NO_QUOTES, refused_prefixes=frozenset({"Q"}))],
        seed=9,
        rate=50_000,
        frame_events=10,
    ) as server:
        yield server


class Watch:
    """Connection events of a client, recorded from the start, awaitable."""

    def __init__(self, client: StreamClient) -> None:
        self.seen: list[ConnectionEvent] = []
        self._changed = asyncio.Event()
        client.add_listener(self._on)

    def _on(self, event: ConnectionEvent) -> None:
        self.seen.append(event)
        self._changed.set()

    async def until(
        self, predicate: Callable[[ConnectionEvent], bool], within: float
    ) -> ConnectionEvent:
        async with asyncio.timeout(within):
            start = 0
            while True:
                for event in self.seen[start:]:
                    if predicate(event):
                        return event
                start = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

    async def state(self, state: ConnectionState, within: float, after: int = 0) -> ConnectionEvent:
        index = len(self.seen) if after < 0 else after
        async with asyncio.timeout(within):
            while True:
                for event in self.seen[index:]:
                    if event.state is state:
                        return event
                self._changed.clear()
                await self._changed.wait()


def stocks(mock: MockServer, key: str = KEY, **kwargs: Any) -> StreamClient:
    kwargs.setdefault("options", options())
    return StreamClient(key, url=mock.ws_url("stocks"), **kwargs)


async def trades_after_reconnect(client: StreamClient, sessions: int) -> None:
    """Read until a trade arrives from session number ``sessions``."""
    async for batch in client:
        if client.connection.sessions >= sessions and any(
            isinstance(e, EquityTrade) for e in batch
        ):
            return


async def assert_resumes(
    client: StreamClient, mock: MockServer, watch: Watch, t: float
) -> ConnectionEvent:
    lost = await watch.state(ConnectionState.RECONNECTING, t)
    await watch.state(ConnectionState.READY, t, after=watch.seen.index(lost))
    await mock.wait_for(
        lambda: any(s.protocol.topics == {"T.*"} for s in mock.sessions("stocks")), within=t
    )
    async with asyncio.timeout(t):
        await trades_after_reconnect(client, 2)
    return lost


CONNECTORS = {"aiohttp": aiohttp_connector, "picows": picows_connector}


@pytest.mark.parametrize("library", sorted(CONNECTORS))
async def test_drop_without_close_frame(busy: MockServer, t: float, library: str) -> None:
    opts = dataclasses.replace(options(), connector=CONNECTORS[library]())
    async with stocks(busy, options=opts) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        await busy.drop_connections()
        lost = await assert_resumes(client, busy, watch, t)
        assert lost.reason == "dropped"
        assert isinstance(lost.error, Disconnected)
        assert lost.error.close_code is None
        assert client.stats.reconnects == 1


@pytest.mark.parametrize("library", sorted(CONNECTORS))
async def test_close_1011(busy: MockServer, t: float, library: str) -> None:
    opts = dataclasses.replace(options(), connector=CONNECTORS[library]())
    async with stocks(busy, options=opts) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        await busy.close_connections(1011)
        lost = await assert_resumes(client, busy, watch, t)
        assert lost.reason == "closed"
        assert isinstance(lost.error, Disconnected)
        assert lost.error.close_code == 1011


async def test_restart_and_subscribe_during_reconnect(busy: MockServer, t: float) -> None:
    async with stocks(busy) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        restart = asyncio.ensure_future(busy.restart(downtime=0.3))
        await watch.state(ConnectionState.RECONNECTING, t)
        assert client.state is not ConnectionState.READY
        # Issued while the server is down: queued, and confirmed by the next session.
        await client.subscribe("Q.AAPL", confirm=True, timeout=t)
        assert client.state is ConnectionState.READY
        await restart
        (session,) = busy.sessions("stocks")
        assert session.protocol.topics == {"T.*", "Q.AAPL"}
        failed = [e for e in watch.seen if e.state is ConnectionState.RECONNECTING]
        assert [e.attempt for e in failed] == list(range(1, len(failed) + 1)), "backoff grew"


async def test_unsubscribe_during_reconnect(busy: MockServer, t: float) -> None:
    async with stocks(busy) as client:
        watch = Watch(client)
        await client.subscribe("T.*", "Q.MSFT", confirm=True)
        restart = asyncio.ensure_future(busy.restart(downtime=0.2))
        await watch.state(ConnectionState.RECONNECTING, t)
        await client.unsubscribe("Q.MSFT")
        await watch.state(ConnectionState.READY, t, after=len(watch.seen))
        await restart
        await busy.wait_for(
            lambda: [s.protocol.topics for s in busy.sessions("stocks")] == [{"T.*"}], within=t
        )


async def test_auth_failure_is_terminal(mock: MockServer) -> None:
    with pytest.raises(AuthError):
        async with stocks(mock, key="not-a-key"):
            pass
    lacking = StreamClient(STOCKS_ONLY, url=mock.ws_url("crypto"), options=options())
    with pytest.raises(AuthError):
        async with lacking:
            pass
    assert lacking.state is ConnectionState.CLOSED


async def test_auth_failure_raises_from_iteration_and_subscribe(mock: MockServer, t: float) -> None:
    client = stocks(mock, key="not-a-key")
    await client.connect(wait=False)
    try:
        async with asyncio.timeout(t):
            with pytest.raises(AuthError):
                async for _ in client:
                    pass
        with pytest.raises(AuthError):
            await client.subscribe("T.*")
        assert mock.connections_total == 1, "no retry after auth_failed"
    finally:
        await client.aclose()


async def test_auth_timeout_of_the_client(mock: MockServer, t: float) -> None:
    mock.ws_faults.ignore_auth = True
    client = stocks(mock, options=options(auth_timeout=0.1))
    watch = Watch(client)
    await client.connect(wait=False)
    try:
        lost = await watch.state(ConnectionState.RECONNECTING, t)
        assert lost.reason == "auth_timeout"
        assert isinstance(lost.error, RequestTimeout)
        mock.ws_faults.ignore_auth = False
        await watch.state(ConnectionState.READY, t)
    finally:
        await client.aclose()


async def test_aclose_while_authenticating(mock: MockServer, t: float) -> None:
    mock.ws_faults.ignore_auth = True
    client = stocks(mock, options=options(auth_timeout=60.0))
    watch = Watch(client)
    await client.connect(wait=False)
    await watch.state(ConnectionState.AUTHENTICATING, t)
    async with asyncio.timeout(t):
        await client.aclose()
    assert [e.state for e in watch.seen][-2:] == [ConnectionState.CLOSING, ConnectionState.CLOSED]
    await mock.wait_for(lambda: not mock.sessions("stocks"), within=t)


async def test_auth_timeout_of_the_server(mock: MockServer, t: float) -> None:
    mock.ws_faults.ignore_auth = True
    mock.ws_faults.auth_timeout = 0.05
    client = stocks(mock)
    watch = Watch(client)
    await client.connect(wait=False)
    try:
        lost = await watch.state(ConnectionState.RECONNECTING, t)
        assert lost.reason == "auth_timeout"
        assert isinstance(lost.error, Disconnected)
        assert lost.error.close_code == 1008
    finally:
        await client.aclose()


LONG = options(later_delay=30.0)  # a test never waits it out: it checks the decision


async def test_max_connections_newest_is_cut_and_backs_off(mock: MockServer, t: float) -> None:
    mock.ws_faults.evict = "newest"
    async with stocks(mock, options=LONG) as first:
        first_watch = Watch(first)
        second = stocks(mock, options=LONG)
        watch = Watch(second)
        async with second:
            lost = await watch.state(ConnectionState.RECONNECTING, t)
            assert lost.reason == "max_connections"
            assert lost.delay == 30.0, "a long pause, not a kicking war"
            assert isinstance(lost.error, Disconnected)
            assert lost.error.close_code == 1008
            await first.subscribe("T.AAPL", confirm=True)
        assert first.state is ConnectionState.READY
        assert first_watch.seen == []
        assert mock.connections_total == 2


async def test_max_connections_oldest_is_cut_and_does_not_fight_back(
    mock: MockServer, t: float
) -> None:
    mock.ws_faults.evict = "oldest"
    async with stocks(mock, options=LONG) as first:
        watch = Watch(first)
        async with stocks(mock, options=LONG) as second:
            lost = await watch.state(ConnectionState.RECONNECTING, t)
            assert lost.reason == "max_connections"
            assert lost.delay == 30.0
            await second.subscribe("T.AAPL", confirm=True)
            assert second.state is ConnectionState.READY
            assert mock.connections_total == 2, "the evicted client did not come back to kick"


async def test_max_connections_can_raise(mock: MockServer, t: float) -> None:
    mock.ws_faults.evict = "newest"
    async with stocks(mock):
        with pytest.raises(Disconnected, match="max_connections"):
            async with stocks(mock, on_max_connections="raise"):
                pass
        second = stocks(mock, on_max_connections="raise")
        await second.connect(wait=False)
        try:
            async with asyncio.timeout(t):
                with pytest.raises(Disconnected) as caught:
                    async for _ in second:
                        pass
            assert caught.value.reason == "max_connections"
            assert second.state is ConnectionState.CLOSED
            with pytest.raises(Disconnected):
                await second.subscribe("T.*")
        finally:
            await second.aclose()


async def test_refusal_of_one_topic_in_a_batch(busy: MockServer, t: float) -> None:
    async with stocks(busy, key=NO_QUOTES) as client:
        with pytest.raises(SubscriptionRefused) as refused:
            await client.subscribe("T.AAPL", "Q.AAPL", "T.MSFT", "Q.MSFT", "AM.*", confirm=True)
        assert set(refused.value.topics) == {"Q.AAPL", "Q.MSFT"}
        assert client.refused == {"Q.AAPL": "not authorized", "Q.MSFT": "not authorized"}
        assert client.subscriptions == frozenset({"T.AAPL", "T.MSFT", "AM.*"})
        (session,) = busy.sessions("stocks")
        assert session.protocol.topics == {"T.AAPL", "T.MSFT", "AM.*"}
        async with asyncio.timeout(t):
            async for batch in client:
                if any(isinstance(e, EquityTrade) for e in batch):
                    break


@pytest.mark.parametrize("overflow", list(Overflow))
async def test_slow_consumer_never_blocks_the_reader(
    busy: MockServer, t: float, overflow: Overflow
) -> None:
    async with stocks(busy, maxsize=4, overflow=overflow) as client:
        watcher = client.consumer(maxsize=100_000, name="watcher")  # this one keeps up
        await client.subscribe("Q.*")
        seen: list[Any] = []
        async with asyncio.timeout(t):
            async for batch in watcher:
                seen.append(batch)
                if len(seen) >= 40:
                    break
        assert client.state is ConnectionState.READY, "the reader went on"
        # Under ERROR_AND_CLOSE the consumer is cut at its first overflow.
        assert client.drops >= (1 if overflow is Overflow.ERROR_AND_CLOSE else 40 - 4)
        assert client.snapshot()["drops"] == client.drops
        default = aiter(client)
        if overflow is Overflow.ERROR_AND_CLOSE:
            with pytest.raises(BufferOverflow):
                await anext(default)
        elif overflow is Overflow.DROP_NEWEST:
            # Batches are coalesced per wake-up: compare the very first event.
            assert (await anext(default))[0] is seen[0][0], "the oldest batches were kept"
        else:
            assert (await anext(default))[0] is not seen[0][0], "the oldest batches were dropped"
        async with asyncio.timeout(t):
            await anext(watcher)  # the stream goes on for the others


@pytest.mark.parametrize(
    ("status", "reason"),
    [(Status.SLOW_CONSUMER, "slow_consumer"), (Status.FORCE_DISCONNECT, "force_disconnect")],
)
async def test_disconnect_statuses_reconnect_with_backoff(
    busy: MockServer, t: float, status: Status, reason: str
) -> None:
    async with stocks(busy) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        busy.disconnect(status)
        lost = await assert_resumes(client, busy, watch, t)
        assert lost.reason == reason
        assert lost.delay is not None
        assert lost.delay > 0


async def test_silence_watchdog(mock: MockServer, t: float) -> None:
    async with stocks(mock, options=options(silence_timeout=0.1)) as client:
        watch = Watch(client)  # subscribed to nothing: no message at all
        lost = await watch.state(ConnectionState.RECONNECTING, t)
        assert lost.reason == "silence"
        await watch.state(ConnectionState.READY, t, after=watch.seen.index(lost))


async def test_websocket_heartbeat_keeps_the_session(mock: MockServer, t: float) -> None:
    heartbeat = Heartbeat(interval=0.01, timeout=t)
    async with stocks(mock, options=options(heartbeat=heartbeat)) as client:
        watch = Watch(client)
        for topic in ("T.A", "T.B", "T.C", "T.D", "T.E"):
            await client.subscribe(topic, confirm=True)  # a round trip each, pings in between
        assert watch.seen == []


async def test_malformed_frames_are_counted_and_skipped(busy: MockServer, t: float) -> None:
    async with stocks(busy) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        busy.send_malformed(Malformed.NOT_JSON)
        busy.send_malformed(Malformed.UNKNOWN_EVENT)
        async with asyncio.timeout(t):
            async for batch in client:
                if any(isinstance(e, UnknownEvent) and e.ev == "ZZ" for e in batch):
                    break
        assert client.stats.decode_errors == 1
        assert client.snapshot()["unknown_events"] == 1
        assert watch.seen == [], "the session went on"


async def test_reconnect_on_request_keeps_the_subscriptions(busy: MockServer, t: float) -> None:
    async with stocks(busy) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        client.reconnect()
        lost = await assert_resumes(client, busy, watch, t)
        assert lost.reason == "reconnect_requested"
        assert lost.delay == 0.0, "at once, not after a backoff"
        assert client.connection.sessions == 2
    with pytest.raises(StreamClosed):
        client.reconnect()


async def test_reconnect_cuts_a_backoff_wait_short(busy: MockServer, t: float) -> None:
    slow = BackoffPolicy(initial=3600.0, max_delay=3600.0, jitter=False)
    async with stocks(busy, options=options(backoff=slow)) as client:
        watch = Watch(client)
        await client.subscribe("T.*", confirm=True)
        restart = asyncio.ensure_future(busy.restart(downtime=0.0))
        lost = await watch.state(ConnectionState.RECONNECTING, t)
        assert lost.delay == 3600.0
        await restart
        client.reconnect()  # an hour's wait ends now
        await watch.state(ConnectionState.READY, t, after=watch.seen.index(lost))
