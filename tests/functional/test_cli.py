"""The ``massivekit`` command line, run as a real process."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys

import aiohttp

from massivekit.config import Market
from massivekit.demo import run_demo

T = 20.0


async def test_mock_cli_serves_then_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "massivekit",
        "mock",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--key",
        "cli-key",
        "--seed",
        "5",
        "--rate",
        "500",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(T):
            first = (await proc.stdout.readline()).decode()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", first)
        assert match, first
        url = match.group(1)
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": "Bearer cli-key"}
            async with http.get(f"{url}/v1/marketstatus/now", headers=headers) as response:
                assert response.status == 200
            async with http.ws_connect(url.replace("http", "ws") + "/stocks") as ws:
                await ws.receive(timeout=T)
                await ws.send_str(json.dumps({"action": "auth", "params": "cli-key"}))
                reply = await ws.receive(timeout=T)
                assert json.loads(reply.data)[0]["status"] == "auth_success"
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(T):
            code = await proc.wait()
    assert code == 0


async def test_mock_cli_needs_a_key() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "massivekit", "mock", "--port", "0", stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(T):
        _, err = await proc.communicate()
    assert proc.returncode != 0
    assert b"--key" in err


async def test_demo_streams_and_renders() -> None:
    async with asyncio.timeout(T):
        board = await run_demo(rate=5_000, duration=1.0, plain=True, refresh=0.2)
    assert board.events > 0
    assert board.lines
    screen = board.render(Market.STOCKS, top=5)
    assert "instrument" in screen
    assert any(symbol in screen for symbol in ("AAPL", "MSFT", "SPY", "QQQ", "TSLA", "NVDA"))
