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
