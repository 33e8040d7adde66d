"""The mock's flood mode: pre-rendered frames as fast as the client reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest

from massivekit.config import Market
from massivekit.mock.server import MockServer
from massivekit.mock.ws import FloodChunk, FloodFrames, FloodMode, ws_text_header
from massivekit.models import FrameDecoder, UnknownEvent

KEY = "flood-key"
T = 10.0  # seconds: every wait in this file is bounded by it


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


Socket = aiohttp.ClientWebSocketResponse[Any]


async def subscribed(
    http: aiohttp.ClientSession, mock: MockServer, topics: str, market: str = "stocks"
) -> Socket:
    """A session past its handshake and subscription acks (frames as bytes)."""
    ws = await http.ws_connect(mock.ws_url(market), decode_text=False)
    await ws.send_str(json.dumps({"action": "auth", "params": KEY}))
    await ws.send_str(json.dumps({"action": "subscribe", "params": topics}))
    acks = 0
    while acks < len(topics.split(",")):
        for event in await next_frame(ws):
            if event.get("status") == "success":
                acks += 1
    return ws


async def next_frame(ws: Socket) -> list[dict[str, Any]]:
    async with asyncio.timeout(T):
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    events: list[dict[str, Any]] = json.loads(msg.data)
    return events


async def test_flood_frames_are_valid_and_of_the_configured_size(
    http: aiohttp.ClientSession,
) -> None:
    mode = FloodMode(frame_events=7, frames=300, loop=False, chunk_bytes=4096)
    async with MockServer([KEY], seed=5, flood=mode) as mock:
        ws = await subscribed(http, mock, "T.*,Q.*,AM.*,A.*,LULD.*,NOI.*")
        decoder = FrameDecoder(Market.STOCKS)
        sizes: list[int] = []
        async with asyncio.timeout(T):
            while sum(sizes) < 7 * 300:
                msg = await ws.receive()
                events = decoder.decode(msg.data)
                assert not any(isinstance(e, UnknownEvent) for e in events)
                sizes.append(len(events))
        assert sizes == [7] * 300
        assert decoder.malformed_frames == 0
        session = mock.sessions("stocks")[0]
        assert session.events_sent == 2100
        assert session.frames_sent == 300 + 3  # and connected, auth_success, the acks
        assert mock.feed("stocks") is None  # no rate-driven feed in flood mode
        await ws.close()


async def test_flood_once_then_quiet(http: aiohttp.ClientSession) -> None:
    mode = FloodMode(frame_events=10, frames=50, loop=False)
    async with MockServer([KEY], seed=5, flood=mode) as mock:
        ws = await subscribed(http, mock, "T.*,Q.*,AM.*,A.*,LULD.*,NOI.*")
        seen = 0
        while seen < 500:
            seen += len(await next_frame(ws))
        assert seen == 500
        # The flood is over: the next frame is the one injected now.
        await mock.wait_for(lambda: mock.sessions("stocks")[0].events_sent == 500, within=T)
        mock.inject("stocks", b'[{"ev":"status","status":"marker","message":"end"}]')
        assert await next_frame(ws) == [{"ev": "status", "status": "marker", "message": "end"}]
        await ws.close()


async def test_flood_loops_until_the_client_leaves(http: aiohttp.ClientSession) -> None:
    mode = FloodMode(frame_events=10, frames=20, loop=True)
    async with MockServer([KEY], seed=5, flood=mode) as mock:
        ws = await subscribed(http, mock, "T.*,Q.*,AM.*,A.*,LULD.*,NOI.*")
        first_round = [await next_frame(ws) for _ in range(20)]
        second_round = [await next_frame(ws) for _ in range(20)]
        assert first_round == second_round  # the same rendered frames, again
        await ws.close()
        await mock.wait_for(lambda: not mock.sessions("stocks"), within=T)


async def test_flood_carries_only_the_subscribed_topics(http: aiohttp.ClientSession) -> None:
    mode = FloodMode(frame_events=5, frames=2_000, loop=True)
    async with MockServer([KEY], seed=5, flood=mode) as mock:
        ws = await subscribed(http, mock, "T.AAPL,Q.*")
        for _ in range(50):
            for event in await next_frame(ws):
                assert event["ev"] == "Q" or (event["ev"], event["sym"]) == ("T", "AAPL")
        await ws.close()


async def test_no_flood_before_a_subscription(http: aiohttp.ClientSession) -> None:
    async with MockServer([KEY], flood=FloodMode(frames=10)) as mock:
        ws = await http.ws_connect(mock.ws_url("stocks"), decode_text=False)
        await ws.send_str(json.dumps({"action": "auth", "params": KEY}))
        assert (await next_frame(ws))[0]["status"] == "connected"
        assert (await next_frame(ws))[0]["status"] == "auth_success"
        mock.inject("stocks", b'[{"ev":"status","status":"marker","message":"x"}]')
        assert (await next_frame(ws))[0]["status"] == "marker"
        assert not mock.sessions("stocks")[0].flooding
        await ws.close()


async def test_flood_stops_for_a_disconnect_status(http: aiohttp.ClientSession) -> None:
    mode = FloodMode(frame_events=10, frames=100, loop=True)
    async with MockServer([KEY], flood=mode) as mock:
        ws = await subscribed(http, mock, "T.*")
        await next_frame(ws)
        await mock.close_connections(1011)
        async with asyncio.timeout(T):
            while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == 1011
        await mock.wait_for(lambda: not mock.sessions("stocks"), within=T)


def test_ws_text_header_lengths() -> None:
    assert ws_text_header(5) == b"\x81\x05"
    assert ws_text_header(125) == b"\x81\x7d"
    assert ws_text_header(126) == b"\x81\x7e\x00\x7e"
    assert ws_text_header(70_000) == b"\x81\x7f" + (70_000).to_bytes(8, "big")


def test_flood_chunks_hold_whole_frames() -> None:
    frames = FloodFrames(Market.CRYPTO, FloodMode(frame_events=3, frames=40, chunk_bytes=1000), 1)
    chunks = frames.chunks_for(cast(Any, _AllTopics()))
    assert sum(c.frames for c in chunks) == 40
    assert sum(c.events for c in chunks) == 120
    for chunk in chunks:
        assert _count_frames(chunk) == chunk.frames


class _AllTopics:
    """Stands in for a session holding every wildcard."""

    def holds_wildcards(self, prefixes: object) -> bool:
        return True

    def wants_topic(self, topic: str) -> bool:
        return True


def _count_frames(chunk: FloodChunk) -> int:
    data, pos, count = chunk.data, 0, 0
    while pos < len(data):
        assert data[pos] == 0x81
        size = data[pos + 1]
        pos += 2
        if size == 126:
            size, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif size == 127:
            size, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
        json.loads(data[pos : pos + size])
        pos += size
        count += 1
    return count
