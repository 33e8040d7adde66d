"""StreamClient against the mock: typed batches, raw frames, callbacks, fan-out, stats, run()."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from massivekit.config import Feed, Market
from massivekit.errors import AuthError, ConfigError, StreamClosed
from massivekit.mock.keys import KeySpec
from massivekit.mock.server import MockServer
from massivekit.models import EquityQuote, EquityTrade, UnknownEvent
from massivekit.stream import (
    ConnectionState,
    Overflow,
    RecordingHook,
    StreamClient,
    StreamOptions,
    resolve_endpoint,
)
from massivekit.stream.metrics import EVENTS, FRAMES, LAG_MS, RECONNECTS
from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.connection import ConnectionConfig

from .conftest import KEY

FAST = StreamOptions(transport=ConnectionConfig(backoff=BackoffPolicy(initial=0.01, jitter=False)))


@pytest.fixture
def t(scale: float) -> float:
    return 10.0 * scale


@pytest.fixture
async def busy() -> AsyncIterator[MockServer]:
    """A mock sending many small frames (10 events each)."""
    async with MockServer([KeySpec(KEY)], seed=5, rate=50_000, frame_events=10) as server:
        yield server


def client_for(mock: MockServer, **kwargs: Any) -> StreamClient:
    kwargs.setdefault("options", FAST)
    return StreamClient(KEY, url=mock.ws_url("stocks"), **kwargs)


async def test_typed_batches_of_the_subscribed_topics(busy: MockServer, t: float) -> None:
    async with asyncio.timeout(t), client_for(busy) as client:
        assert client.market is Market.STOCKS
        await client.subscribe("T.*", "Q.AAPL", confirm=True)
        seen = 0
        async for batch in client:
            for event in batch:
                assert isinstance(event, EquityTrade | EquityQuote)
                if isinstance(event, EquityQuote):
                    assert event.symbol == "AAPL"
            seen += len(batch)
            if seen >= 500:
                break
        assert client.stats.events >= 500
        assert client.stats.frames >= 50
        assert client.subscriptions == frozenset({"T.*", "Q.AAPL"})


async def test_wildcards_are_per_prefix(mock: MockServer, t: float) -> None:
    async with client_for(mock) as client:
        await client.subscribe("AM.AAPL", "A.*", confirm=True)
        (session,) = mock.sessions("stocks")
        assert session.protocol.topics == frozenset({"A.*", "AM.AAPL"}), "A.* does not cover AM.*"
        await client.subscribe("A.MSFT", confirm=True)  # covered by A.*: nothing sent
        assert session.protocol.topics == frozenset({"A.*", "AM.AAPL"})
        await client.unsubscribe("A.*")
        await mock.wait_for(lambda: session.protocol.topics == {"AM.AAPL", "A.MSFT"}, within=t)


async def test_unsubscribe_takes_effect_at_once(busy: MockServer, t: float) -> None:
    async with asyncio.timeout(t), client_for(busy) as client:
        await client.subscribe("T.*", "Q.*", confirm=True)
        async for batch in client:
            if any(isinstance(e, EquityTrade) for e in batch):
                break
        await client.unsubscribe("T.*")
        (session,) = busy.sessions("stocks")
        await busy.wait_for(lambda: "T.*" not in session.protocol.topics, within=t)
        busy.inject(
            "stocks", b'[{"ev":"ZZ","sym":"MARK"}]'
        )  # every later frame is after the change
        after_mark = False
        quotes = 0
        async for batch in client:
            if any(isinstance(e, UnknownEvent) and e.instrument == "MARK" for e in batch):
                after_mark = True
                continue
            if after_mark:
                assert not any(isinstance(e, EquityTrade) for e in batch)
                quotes += len(batch)
                if quotes >= 200:
                    break


async def test_shared_topics_leave_upstream_with_their_last_owner(
    mock: MockServer, t: float
) -> None:
    async with client_for(mock) as client:
        await client.subscribe("T.AAPL", owner="a", confirm=True)
        await client.subscribe("T.AAPL", owner="b", confirm=True)
        (session,) = mock.sessions("stocks")
        await client.unsubscribe("T.AAPL", owner="a")
        assert client.connection.subscriptions.refcount("T.AAPL") == 1
        await client.subscribe("Q.AAPL", confirm=True)  # a round trip after the unsubscribe
        assert "T.AAPL" in session.protocol.topics
        await client.unsubscribe("T.AAPL", owner="b")
        await mock.wait_for(lambda: "T.AAPL" not in session.protocol.topics, within=t)


async def test_raw_frames_and_broadcast_consumers(busy: MockServer, t: float) -> None:
    async with asyncio.timeout(t), client_for(busy) as client:
        raw = client.raw()
        extra = client.consumer(name="extra")
        await client.subscribe("Q.*", confirm=True)
        frame = await anext(raw)
        assert isinstance(frame, bytes)
        assert frame.startswith(b"[")
        first_default = await anext(aiter(client))
        first_extra = await anext(extra)
        # Broadcast: every consumer sees every event (the very objects), in order;
        # batches are coalesced per wake-up, so the later reader may hold more.
        assert len(first_extra) >= len(first_default) > 0
        assert all(a is b for a, b in zip(first_default, first_extra, strict=False))
        extra.close()
        assert await anext(aiter(client))


async def test_callbacks_by_type_topic_and_wildcard(busy: MockServer, t: float) -> None:
    trades: list[EquityTrade] = []
    aapl: list[Any] = []
    every: list[Any] = []
    got_enough = asyncio.Event()

    async def on_aapl(event: Any) -> None:
        aapl.append(event)
        if len(aapl) >= 3:
            got_enough.set()

    def broken(event: Any) -> None:
        raise ValueError("a user bug")

    client = client_for(busy, options=StreamOptions(typed=False, transport=FAST.transport))
    client.on(EquityTrade, trades.append)
    client.on("*", every.append)
    client.on("T.*", broken)
    async with asyncio.timeout(t), client:
        client.on("Q.AAPL")(on_aapl)  # as a decorator, after the start
        await client.subscribe("T.*", "Q.AAPL")
        await got_enough.wait()
        assert trades
        assert all(isinstance(e, EquityTrade) for e in trades)
        assert all(e.symbol == "AAPL" for e in aapl)
        assert len(every) >= len(trades) + len(aapl)
        assert client.off("T.*", broken)
        assert not client.off("T.*", broken)
        with pytest.raises(StreamClosed):
            aiter(client)  # no default consumer with typed=False


async def test_stats_and_metrics_hook(busy: MockServer, t: float) -> None:
    hook = RecordingHook()
    options = StreamOptions(transport=FAST.transport, lag_every=1, metrics_interval=0.01)
    async with asyncio.timeout(t), client_for(busy, metrics=hook, options=options) as client:
        await client.subscribe("Q.*", confirm=True)
        async for _ in client:
            if hook.total(EVENTS) > 100:
                break
        await busy.drop_connections()
        events = client.events()
        async for event in events:
            if event.state is ConnectionState.READY:
                break
        await client.subscribe("T.*", confirm=True)
        async for _ in client:
            if hook.total(RECONNECTS) >= 1:
                break
        assert hook.total(FRAMES) > 0
        assert client.stats.reconnects == 1
        assert client.stats.last_lag_ms is not None
        assert any(name == LAG_MS for name, _ in hook.histograms)
        snapshot = client.snapshot()
        assert snapshot["events"] == client.stats.events
        assert snapshot["connected_since"] is not None


async def test_iterating_before_the_start_is_an_error(mock: MockServer) -> None:
    client = client_for(mock)
    with pytest.raises(StreamClosed, match="async with"):
        aiter(client)


async def test_the_key_never_shows(
    mock: MockServer, t: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "k3y-that-must-not-leak"
    events: list[str] = []
    client = StreamClient(secret, url=mock.ws_url("stocks"), options=FAST)
    client.add_listener(lambda e: events.append(f"{e} {e.error!r}"))
    with pytest.raises(AuthError) as caught:
        async with client:
            pass
    texts = [caplog.text, repr(client), repr(client.connection), str(caught.value), *events]
    assert not [text for text in texts if secret in text]


def test_endpoints_for_every_feed_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint(Feed.DELAYED, "crypto", None) == (
        "wss://delayed.massive.com/crypto",
        Market.CRYPTO,
    )
    assert resolve_endpoint("business", None, None)[0] == "wss://business.massive.com/stocks"
    assert (
        resolve_endpoint("launchpad", "options", None)[0] == "wss://launchpad.massive.com/options"
    )
    assert resolve_endpoint("proxy.local:8080", "forex", None)[0] == "wss://proxy.local:8080/forex"
    assert resolve_endpoint(Feed.REAL_TIME, "futures/cme", None)[1] is Market.FUTURES_CME
    assert resolve_endpoint(Feed.REAL_TIME, None, "ws://h:1/indices")[1] is Market.INDICES
    assert resolve_endpoint(Feed.REAL_TIME, "stocks", "ws://h:1/custom") == (
        "ws://h:1/custom",
        Market.STOCKS,
    )
    with pytest.raises(ConfigError, match="market"):
        resolve_endpoint(Feed.REAL_TIME, None, "ws://h:1/custom")
    with pytest.raises(ConfigError, match="ws://"):
        resolve_endpoint(Feed.REAL_TIME, None, "http://h:1/stocks")
    monkeypatch.setenv("MASSIVE_API_KEY", "from-the-env")
    client = StreamClient(feed=Feed.DELAYED, market="forex")
    assert client.url == "wss://delayed.massive.com/forex"
    assert "from-the-env" not in repr(client)
    monkeypatch.delenv("MASSIVE_API_KEY")
    with pytest.raises(ConfigError):
        StreamClient()
    with pytest.raises(ConfigError):
        StreamClient(KEY, on_max_connections="fight")  # type: ignore[arg-type]


def test_run_blocks_until_stop(scale: float) -> None:
    """The sync entry point, against a mock running on its own thread and loop."""
    ports: queue.Queue[int] = queue.Queue()
    done = threading.Event()

    async def serve() -> None:
        async with MockServer([KeySpec(KEY)], rate=20_000, frame_events=10) as server:
            ports.put(server.port)
            await asyncio.get_running_loop().run_in_executor(None, done.wait, 30 * scale)

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        port = ports.get(timeout=10 * scale)
        client = StreamClient(KEY, url=f"ws://127.0.0.1:{port}/stocks", options=FAST)
        batches: list[Any] = []

        def handle(batch: Any) -> None:
            batches.append(batch)
            if len(batches) == 20:
                client.stop()

        client.run(handle, subscriptions=["Q.*"])
        assert len(batches) >= 20
        assert client.state is ConnectionState.CLOSED
        # Callbacks only, no handler: run() blocks until stop() too.
        quiet = StreamClient(KEY, url=f"ws://127.0.0.1:{port}/stocks", options=FAST)
        quotes: list[Any] = []

        def on_quote(event: Any) -> None:
            quotes.append(event)
            if len(quotes) == 50:
                quiet.stop()

        quiet.on(EquityQuote, on_quote)
        quiet.run(subscriptions=["Q.*"])
        assert len(quotes) >= 50
    finally:
        done.set()
        thread.join(timeout=10 * scale)
    assert not thread.is_alive()


async def test_overflow_policy_applies_to_the_default_consumer(busy: MockServer, t: float) -> None:
    async with (
        asyncio.timeout(t),
        client_for(busy, maxsize=3, overflow=Overflow.DROP_NEWEST) as client,
    ):
        watcher = client.consumer(maxsize=10_000, name="watcher")
        await client.subscribe("Q.*")
        seen = 0
        async for _ in watcher:
            seen += 1
            if seen >= 20:
                break
        assert client.drops >= 17 - 3


class _BrokenHistograms(RecordingHook):
    """A metrics hook whose histogram raises (the lag is sampled on the socket reader)."""

    def histogram(self, name: str, value: float, **labels: str) -> None:
        raise RuntimeError("broken hook")


async def test_a_raising_metrics_hook_does_not_end_the_session(busy: MockServer, t: float) -> None:
    options = StreamOptions(transport=FAST.transport, lag_every=1)
    hook = _BrokenHistograms()
    async with asyncio.timeout(t), client_for(busy, metrics=hook, options=options) as client:
        await client.subscribe("Q.*", confirm=True)
        seen = 0
        async for batch in client:
            seen += len(batch)
            if seen >= 200:
                break
        assert client.connection.sink_errors > 0, "reported, not swallowed"
        assert client.connection.sessions == 1, "and the session went on"


async def test_counts_are_exact_across_sessions(busy: MockServer, t: float) -> None:
    options = StreamOptions(transport=FAST.transport, coalesce=False)
    async with asyncio.timeout(t), client_for(busy, options=options) as client:
        consumer = aiter(client)
        batches: list[Any] = []
        await client.subscribe("Q.*", confirm=True)
        batches.append(await anext(consumer))
        await busy.drop_connections()
        while client.connection.sessions < 2 or len(batches) < 20:
            batches.append(await anext(consumer))
        await client.unsubscribe("Q.*")
        await client.subscribe("T.NOSUCH", confirm=True)  # a round trip: no Q.* after it
        default = client._default
        assert default is not None
        while (batch := default.get_nowait()) is not None:
            batches.append(batch)
        stats = client.stats
        # coalesce=False: one batch per frame. Every frame counted once, over
        # both sessions, whether the direct path or the general one took it.
        assert stats.last_frame_at is not None
        assert stats.last_frame_at <= time.monotonic()
        assert stats.frames == len(batches)
        assert stats.events == sum(len(b) for b in batches)
        assert stats.bytes > 0
        assert client._decoder.frames < stats.frames, "the direct path took frames"
