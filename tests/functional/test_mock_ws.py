"""The mock's WebSocket side, driven with a plain aiohttp client over loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from massivekit.config import Market
from massivekit.mock.keys import UPGRADE_MESSAGE
from massivekit.mock.server import MockServer
from massivekit.mock.ws import Malformed

from .conftest import KEY, NO_QUOTES, OTHER_KEY, STOCKS_ONLY

T = 10.0  # seconds: every wait in this file is bounded by it


async def frame(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    async with asyncio.timeout(T):
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    events: list[dict[str, Any]] = json.loads(msg.data)
    return events


async def statuses(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` status events, skipping data frames."""
    seen: list[dict[str, Any]] = []
    while len(seen) < count:
        seen.extend(e for e in await frame(ws) if e["ev"] == "status")
    return seen


async def login(
    http: aiohttp.ClientSession, mock: MockServer, market: str = "stocks", key: str = KEY
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(mock.ws_url(market))
    assert await frame(ws) == [
        {"ev": "status", "status": "connected", "message": "Connected Successfully"}
    ]
    await ws.send_str(json.dumps({"action": "auth", "params": key}))
    return ws


async def ended_without_close_frame(ws: aiohttp.ClientWebSocketResponse) -> bool:
    async with asyncio.timeout(T):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return False
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return True


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    async with asyncio.timeout(T):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data)
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None


async def test_handshake_acks_and_data(mock: MockServer, http: aiohttp.ClientSession) -> None:
    ws = await login(http, mock)
    assert await frame(ws) == [
        {"ev": "status", "status": "auth_success", "message": "authenticated"}
    ]
    await ws.send_str('{"action":"subscribe","params":"T.*, Q.AAPL"}')
    acks = await statuses(ws, 2)
    assert [a["message"] for a in acks] == ["subscribed to: T.*", "subscribed to: Q.AAPL"]
    last_seq: dict[tuple[str, str], int] = {}
    seen = 0
    while seen < 300:
        for event in await frame(ws):
            if event["ev"] == "status":
                continue
            assert event["ev"] == "T" or (event["ev"] == "Q" and event["sym"] == "AAPL")
            key = (event["ev"], event["sym"])
            assert event["q"] > last_seq.get(key, -1), "sequence numbers increase per symbol"
            last_seq[key] = event["q"]
            seen += 1
    await ws.close()


async def test_bad_key_fails_then_drops_without_close_frame(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    ws = await login(http, mock, key="wrong")
    assert await frame(ws) == [
        {"ev": "status", "status": "auth_failed", "message": "authentication failed"}
    ]
    assert await ended_without_close_frame(ws)


async def test_cluster_the_key_lacks_answers_auth_failed(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    ws = await login(http, mock, market="crypto", key=STOCKS_ONLY)
    (event,) = await frame(ws)
    assert event["status"] == "auth_failed"
    assert event["message"] == UPGRADE_MESSAGE
    assert await ended_without_close_frame(ws)


async def test_refused_topic_is_not_authorized(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    ws = await login(http, mock, key=NO_QUOTES)
    await statuses(ws, 1)
    await ws.send_str('{"action":"subscribe","params":"T.AAPL,Q.AAPL,ZZ.AAPL"}')
    answers = await statuses(ws, 2)
    assert answers == [
        {"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"},
        {"ev": "status", "status": "error", "message": "not authorized"},
    ]
    await ws.close()


async def test_action_before_auth_and_garbage(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    ws = await http.ws_connect(mock.ws_url("stocks"))
    await frame(ws)
    await ws.send_str('{"action":"subscribe","params":"T.AAPL"}')
    assert (await frame(ws))[0]["status"] == "auth_required"
    await ws.send_bytes(b"\xff not json")
    assert (await frame(ws))[0]["status"] == "error"
    await ws.send_bytes(json.dumps({"action": "auth", "params": KEY}).encode())
    assert (await frame(ws))[0]["status"] == "auth_success"
    await ws.close()


async def test_auth_timeout(mock: MockServer, http: aiohttp.ClientSession) -> None:
    mock.ws_faults.auth_timeout = 0.05
    ws = await http.ws_connect(mock.ws_url("stocks"))
    await frame(ws)
    assert (await frame(ws))[0]["status"] == "auth_timeout"
    assert await close_code(ws) == 1008


@pytest.mark.parametrize("evict", ["newest", "oldest"])
async def test_max_connections(mock: MockServer, http: aiohttp.ClientSession, evict: str) -> None:
    mock.ws_faults.evict = evict  # type: ignore[assignment]
    first = await login(http, mock)
    await statuses(first, 1)
    second = await login(http, mock, market="stocks")
    victim, survivor = (second, first) if evict == "newest" else (first, second)
    seen = await statuses(victim, 2 if victim is second else 1)
    assert seen[-1]["status"] == "max_connections"
    assert await close_code(victim) == 1008
    await survivor.send_str('{"action":"subscribe","params":"T.MSFT"}')
    assert (await statuses(survivor, 1 if survivor is first else 2))[-1]["status"] == "success"
    await survivor.close()


async def test_connection_limit_is_per_key_and_cluster(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    sockets = [
        await login(http, mock, "stocks", KEY),
        await login(http, mock, "crypto", KEY),
        await login(http, mock, "stocks", OTHER_KEY),
    ]
    for ws in sockets:
        assert (await statuses(ws, 1))[0]["status"] == "auth_success"
    await mock.wait_for(lambda: sum(s.ready for s in mock.sessions()) == 3, T)
    for ws in sockets:
        await ws.close()


async def test_slow_consumer_is_cut(http: aiohttp.ClientSession) -> None:
    async with MockServer([KEY], rate=200_000, frame_events=100) as mock:
        mock.ws_faults.slow_consumer_bytes = 256 * 1024
        ws = await login(http, mock)
        await statuses(ws, 1)
        other = await login(http, mock, key=OTHER_KEY)
        await statuses(other, 1)
        await ws.send_str('{"action":"subscribe","params":"T.*,Q.*"}')
        # Stop reading until the mock has judged this client slow.
        await mock.wait_for(lambda: any(s.closing for s in mock.sessions("stocks")), T)
        assert sum(s.closing for s in mock.sessions("stocks")) == 1, "only the slow one"
        seen: list[str] = []
        while not ws.closed:
            msg = await ws.receive(timeout=T)
            if msg.type is aiohttp.WSMsgType.TEXT:
                seen.extend(e["status"] for e in json.loads(msg.data) if e["ev"] == "status")
        assert seen[-1] == "slow_consumer"
        assert ws.close_code == 1008
        assert not other.closed
        await other.close()


async def test_drop_without_close_frame(mock: MockServer, http: aiohttp.ClientSession) -> None:
    ws = await login(http, mock)
    await statuses(ws, 1)
    await mock.wait_for(lambda: len(mock.sessions()) == 1, T)
    assert await mock.drop_connections() == 1
    assert await ended_without_close_frame(ws)


async def test_close_1011(mock: MockServer, http: aiohttp.ClientSession) -> None:
    ws = await login(http, mock)
    await statuses(ws, 1)
    await mock.close_connections(1011)
    assert await close_code(ws) == 1011


async def test_restart_cuts_then_serves_again(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    ws = await login(http, mock)
    await statuses(ws, 1)
    port = mock.port
    await mock.restart()
    assert await ended_without_close_frame(ws)
    assert mock.port == port
    again = await login(http, mock)
    assert (await statuses(again, 1))[0]["status"] == "auth_success"
    await again.close()


@pytest.mark.parametrize("kind", list(Malformed))
async def test_malformed_frames_on_demand(
    mock: MockServer, http: aiohttp.ClientSession, kind: Malformed
) -> None:
    ws = await http.ws_connect(mock.ws_url("stocks"), max_msg_size=8 * 1024 * 1024)
    await frame(ws)
    await ws.send_str(json.dumps({"action": "auth", "params": KEY}))
    await frame(ws)
    assert mock.send_malformed(kind) == 1
    async with asyncio.timeout(T):
        msg = await ws.receive()
    if kind is Malformed.OVERSIZE:
        assert len(msg.data) > 1024 * 1024
    else:
        assert msg.data.encode() == kind.value
    await ws.close()


async def test_control_endpoint(mock: MockServer, http: aiohttp.ClientSession) -> None:
    ws = await login(http, mock)
    await statuses(ws, 1)
    async with http.post(f"{mock.url}/_mock/disconnect", json={"status": "force_disconnect"}) as r:
        assert r.status == 200
        assert (await r.json())["result"] == 1
    assert (await statuses(ws, 1))[0]["status"] == "force_disconnect"
    async with http.post(f"{mock.url}/_mock/nope", json={}) as r:
        assert r.status == 400
    async with http.post(f"{mock.url}/_mock/faults", json={"evict": "oldest"}) as r:
        assert r.status == 200
    assert mock.ws_faults.evict == "oldest"


@pytest.mark.parametrize("market", [m.value for m in Market if m.family is m])
async def test_every_cluster_streams(
    mock: MockServer, http: aiohttp.ClientSession, market: str
) -> None:
    wildcard = {
        "stocks": "T.*",
        "options": "T.*",
        "forex": "C.*",
        "crypto": "XT.*",
        "indices": "V.*",
        "futures": "T.*",
    }[market]
    ws = await login(http, mock, market)
    await statuses(ws, 1)
    await ws.send_str(json.dumps({"action": "subscribe", "params": wildcard}))
    await statuses(ws, 1)
    events: list[dict[str, Any]] = []
    while len(events) < 20:
        events.extend(e for e in await frame(ws) if e["ev"] != "status")
    assert {e["ev"] for e in events} == {wildcard.split(".")[0]}
    await ws.close()
