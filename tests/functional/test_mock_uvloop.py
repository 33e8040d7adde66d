"""The mock serves under uvloop too (benchmarks run it there)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from massivekit.mock.server import MockServer

uvloop = pytest.importorskip("uvloop")


async def _handshake_after_restart() -> tuple[int, int, str]:
    async with asyncio.timeout(20), MockServer(["uv-key-123456"]) as mock:
        first = mock.port
        await mock.restart()
        async with aiohttp.ClientSession() as http, http.ws_connect(mock.ws_url("stocks")) as ws:
            await ws.receive()
            await ws.send_str(json.dumps({"action": "auth", "params": "uv-key-123456"}))
            reply = json.loads((await ws.receive()).data)[0]["status"]
        return first, mock.port, reply


def test_mock_starts_and_restarts_under_uvloop() -> None:
    first, after, status = uvloop.run(_handshake_after_restart())
    assert first == after
    assert status == "auth_success"


async def _through_the_proxy() -> tuple[int, list[str]]:
    from massivekit.proxy.server import ProxyServer

    async with (
        asyncio.timeout(20),
        MockServer(["uv-key-123456"]) as mock,
        ProxyServer(
            upstream_url=mock.url, upstream_key="uv-key-123456", client_keys=["uv-client-key-1"]
        ) as proxy,
        aiohttp.ClientSession() as http,
        http.ws_connect(proxy.ws_url("stocks")) as ws,
    ):
        statuses = [json.loads((await ws.receive()).data)[0]["status"]]
        await ws.send_str(json.dumps({"action": "auth", "params": "uv-client-key-1"}))
        statuses.append(json.loads((await ws.receive()).data)[0]["status"])
        await ws.send_str(json.dumps({"action": "subscribe", "params": "T.*"}))
        statuses.append(json.loads((await ws.receive()).data)[0]["status"])
        data = json.loads((await ws.receive()).data)  # a frame of trades, through the proxy
        statuses.append(data[0]["ev"])
        return proxy.port, statuses


def test_the_proxy_serves_under_uvloop() -> None:
    """The proxy's command line runs it on uvloop (massivekit._loop)."""
    port, statuses = uvloop.run(_through_the_proxy())
    assert port > 0
    assert statuses == ["connected", "auth_success", "success", "T"]
