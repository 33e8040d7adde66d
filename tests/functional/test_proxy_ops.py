"""Proxy auth, admin, health, metrics, drain, test mode and the official client."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import sys
from typing import Any

import aiohttp
import pytest
from massive import WebSocketClient  # type: ignore[import-untyped]
from massive.exceptions import AuthError as OfficialAuthError  # type: ignore[import-untyped]

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.mock.server import MockServer
from massivekit.proxy.config import ClientKey

from .conftest import KEY
from .test_proxy_support import ADMIN, CLIENT_KEY, Client, clients, proxy_for

STOCKS_KEY = "proxy-stocks-only-key"
BEARER = {"Authorization": f"Bearer {ADMIN}"}


async def test_bad_proxy_key_answers_auth_failed_and_drops(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    async with proxy_for(mock.url, KEY) as proxy:
        for key in ("not-a-proxy-key", KEY):  # the upstream key is no proxy key either
            client = Client(await http.ws_connect(proxy.ws_url("stocks")), [])
            statuses = await client.handshake(key)
            assert [s["status"] for s in statuses] == ["connected", "auth_failed"]
            message = await client.ws.receive(timeout=5)
            assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert client.ws.close_code != 1000  # a TCP drop, no close frame, as Massive
            await client.ws.close()
        assert not mock.sessions("stocks")  # no upstream for a client that never got in


async def test_key_not_allowed_a_cluster(mock: MockServer, http: aiohttp.ClientSession) -> None:
    limited = ClientKey(ApiKey(STOCKS_KEY), frozenset({Market.STOCKS}), "stocks-team")
    async with proxy_for(mock.url, KEY, client_keys=[limited]) as proxy:
        client = Client(await http.ws_connect(proxy.ws_url("crypto")), [])
        statuses = await client.handshake(STOCKS_KEY)
        assert statuses[-1]["status"] == "auth_failed"
        assert "crypto" in statuses[-1]["message"]
        await client.ws.close()
        async with clients(http, proxy) as make:
            ok = await make(["T.AAPL"], key=STOCKS_KEY)
            assert proxy.clients_view()[0]["key_name"] == "stocks-team"
            await ok.aclose()


async def test_acks_and_refusals_are_massive_s(
    mock: MockServer, http: aiohttp.ClientSession
) -> None:
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy, "options") as make:
        client = await make([], start=False)
        answers = await client.subscribe(["T.*", "Q.*"])  # options quotes take no wildcard
        assert [a["status"] for a in answers] == ["success", "error"]
        assert answers[0]["message"] == "subscribed to: T.*"


async def test_admin_needs_the_token(mock: MockServer, http: aiohttp.ClientSession) -> None:
    async with proxy_for(mock.url, KEY) as proxy:
        async with http.get(proxy.url + "/admin/status") as response:
            assert response.status == 401
        headers = {"Authorization": "Bearer wrong"}
        async with http.get(proxy.url + "/admin/status", headers=headers) as response:
            assert response.status == 403
    async with (
        proxy_for(mock.url, KEY, admin_token=None) as proxy,
        http.get(proxy.url + "/admin/status", headers=BEARER) as response,
    ):
        assert response.status == 404


async def test_admin_commands(mock: MockServer, http: aiohttp.ClientSession, scale: float) -> None:
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        client = await make(["T.AAPL"])
        victim = await make(["T.MSFT"])
        async with http.get(proxy.url + "/admin/status", headers=BEARER) as response:
            status = await response.json()
        assert status["health"]["clients"] == 2
        assert KEY not in str(status)
        assert CLIENT_KEY not in str(status)
        async with http.get(proxy.url + "/admin/subscriptions", headers=BEARER) as response:
            subs = (await response.json())["stocks"]
        assert subs["upstream"] == ["T.AAPL", "T.MSFT"]
        await _post(http, proxy.url + "/admin/reconnect", {"cluster": "stocks"})
        await client.until(lambda c: "upstream_restored" in c.status_names(), 10 * scale)
        ids = [row["id"] for row in proxy.clients_view() if row["topics"] == ["T.MSFT"]]
        gone = proxy.sessions[ids[0]]
        await _post(http, proxy.url + "/admin/disconnect", {"client": ids[0]})
        await victim.until(lambda c: c.close_code is not None, 10 * scale)
        if gone.sink is not None:  # detached before the close frame: the transport's alone
            assert not gone.sink.attached
        assert "force_disconnect" in victim.status_names()
        await _post(http, proxy.url + "/admin/disconnect", {"client": 10**9}, 404)
        await _post(http, proxy.url + "/admin/test-mode", {"enabled": True, "scenario": "x"}, 400)


async def test_test_mode_and_scenarios_mix_marked_data(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        client = await make(["T.*"])
        await _post(http, proxy.url + "/admin/test-mode", {"enabled": True})
        await client.until(lambda c: any(b"ZZTEST" in e for e in c.events), 10 * scale)
        assert all(b'"test":true' in e for e in client.events if b"ZZTEST" in e)
        await _post(http, proxy.url + "/admin/scenario", {"name": "halt"})
        assert proxy.test_feed.scenario == "halt"
        assert proxy.test_feed.enabled
        off = await _post(http, proxy.url + "/admin/test-mode", {"enabled": False})
        assert off["test_mode"] is False
        assert any(b'"sym":"AAPL"' in e or b'"sym":"MSFT"' in e for e in client.events)


async def test_health_pages_and_metrics(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        client = await make(["T.*"])
        await client.until(lambda c: len(c.events) > 20, 10 * scale)
        async with http.get(proxy.url + "/health") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        async with http.get(proxy.url + "/health/upstream") as response:
            upstream = (await response.json())["stocks"]
        assert upstream["state"] == "ready"
        assert upstream["topics"] == 1
        async with http.get(proxy.url + "/health/clients") as response:
            rows = await response.json()
        assert rows[0]["topics"] == ["T.*"]
        assert rows[0]["events_sent"] > 0
        (session,) = proxy.sessions.values()
        if session.sink is not None:  # the C core writes rounds straight to the socket
            assert session.sink.attached
            assert session.sink.sent[1] > 0
        async with http.get(proxy.url + "/metrics") as response:
            text = await response.text()
        for line in (
            'massivekit_proxy_events_in_total{cluster="stocks",ev="T"}',
            'massivekit_proxy_events_out_total{cluster="stocks",ev="T"}',
            'massivekit_proxy_clients{cluster="stocks"} 1.0',
            'massivekit_proxy_upstream_up{cluster="stocks"} 1.0',
            "massivekit_proxy_latency_seconds_bucket",
        ):
            assert line in text, line
        assert KEY not in text
        assert CLIENT_KEY not in text


async def test_drain_flushes_and_closes_with_1001(
    mock: MockServer, http: aiohttp.ClientSession, scale: float
) -> None:
    proxy = proxy_for(mock.url, KEY)
    await proxy.start()
    try:
        async with clients(http, proxy) as make:
            client = await make(["T.*"])
            await client.until(lambda c: len(c.events) > 10, 10 * scale)
            await proxy.drain(1.0 * scale)
            await client.until(lambda c: c.close_code is not None, 10 * scale)
            assert client.close_code == 1001
            with pytest.raises(aiohttp.ClientError):
                await http.ws_connect(proxy.ws_url("stocks"))
        await mock.wait_for(lambda: not mock.sessions("stocks"), within=5 * scale)
    finally:
        await proxy.aclose()


async def test_official_client_through_the_proxy(mock: MockServer, scale: float) -> None:
    async with proxy_for(mock.url, KEY) as proxy:
        received: list[Any] = []
        enough = asyncio.Event()

        async def processor(messages: list[Any]) -> None:
            received.extend(messages)
            if len(received) >= 50:
                enough.set()

        official = WebSocketClient(
            api_key=CLIENT_KEY,
            feed=f"127.0.0.1:{proxy.port}",
            market="stocks",
            secure=False,
            subscriptions=["T.*", "Q.AAPL"],
        )
        task = asyncio.create_task(official.connect(processor))
        try:
            async with asyncio.timeout(10 * scale):
                await enough.wait()
        finally:
            await official.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        kinds = {type(m).__name__ for m in received}
        assert "EquityTrade" in kinds
        bad = WebSocketClient(
            api_key="wrong", feed=f"127.0.0.1:{proxy.port}", market="stocks", secure=False
        )
        with pytest.raises(OfficialAuthError):
            async with asyncio.timeout(10 * scale):
                await bad.connect(processor)


async def test_cli_prints_listening_first(mock: MockServer, scale: float) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys, asyncio, argparse\n"
        "from massivekit.proxy import cli\n"
        "p = argparse.ArgumentParser(); cli.add_parser(p.add_subparsers())\n"
        "sys.exit(asyncio.run(cli.run(p.parse_args(sys.argv[1:]))))",
        "proxy",
        "--upstream",
        mock.url,
        "--upstream-key",
        KEY,
        "--client-key",
        CLIENT_KEY,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20 * scale):
            first = (await process.stdout.readline()).decode()
        assert first.startswith("listening on http://127.0.0.1:")
    finally:
        process.terminate()
        async with asyncio.timeout(20 * scale):
            code = await process.wait()
    assert code == 0


async def _post(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    async with http.post(url, json=body, headers=BEARER) as response:
        assert response.status == status, await response.text()
        return await response.json() if status == 200 else {}


async def test_stopping_with_clients_logs_no_warnings(
    mock: MockServer, http: aiohttp.ClientSession, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    # Every client leaves at once when the proxy stops under them: unsubscribing
    # from the closing upstream is expected then, not a problem worth a warning each.
    proxy = proxy_for(mock.url, KEY, grace=0.0)
    await proxy.start()
    async with clients(http, proxy) as make:
        made = [await make([f"T.{s}", "Q.*"]) for s in ("AAPL", "MSFT", "SPY")]
        await made[0].until(lambda c: len(c.events) > 5, 10 * scale)
        with caplog.at_level("WARNING", logger="massivekit"):
            await proxy.aclose()
    assert not [r for r in caplog.records if r.name.startswith("massivekit.proxy")]


async def test_clients_gone_during_the_upgrade_log_no_errors(
    mock: MockServer, http: aiohttp.ClientSession, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: each such client logged an aiohttp traceback at ERROR (log flooding)."""
    loop = asyncio.get_running_loop()
    upgrade = (
        b"GET /stocks HTTP/1.1\r\nHost: proxy\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with proxy_for(mock.url, KEY) as proxy, clients(http, proxy) as make:
        with caplog.at_level("ERROR"):
            for _ in range(20):
                sock = socket.socket()
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", proxy.port))
                await loop.sock_sendall(sock, upgrade)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()  # a reset, before the 101 is written
            client = await make(["T.*"])  # served as ever, after all of them
            await client.until(lambda c: len(c.events) > 5, 10 * scale)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
