"""The proxy's Unix socket: the same application as on TCP, for same-host clients.

Socket paths live in a fresh directory under ``/tmp``: an ``AF_UNIX`` path
holds at most 107 bytes, which pytest's ``tmp_path`` can exceed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from massivekit.errors import ConfigError
from massivekit.mock.server import MockServer

from .conftest import KEY
from .test_proxy_support import ADMIN, CLIENT_KEY, Client, clients, proxy_for, wants

T = 20.0


@asynccontextmanager
async def over_unix(path: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session whose every connection goes to the Unix socket at ``path``."""
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session:
        yield session


async def unix_client(session: aiohttp.ClientSession, topics: list[str]) -> Client:
    """An authenticated client of ``/stocks`` over the Unix socket, reading."""
    client = Client(await session.ws_connect("ws://localhost/stocks"), [])
    statuses = await client.handshake()
    assert statuses[-1]["status"] == "auth_success", statuses
    acks = await client.subscribe(topics)
    assert len(acks) == len(topics), acks
    client.start()
    return client


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def exists(path: str) -> bool:
    return os.path.exists(path)


def write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


async def test_unix_and_tcp_clients_each_get_their_events(
    mock: MockServer, http: aiohttp.ClientSession, sock_path: str, scale: float
) -> None:
    async with (
        proxy_for(mock.url, KEY, unix_path=sock_path) as proxy,
        clients(http, proxy) as make,
        over_unix(sock_path) as local,
    ):
        assert proxy.unix_path == sock_path
        assert f"unix={sock_path}" in repr(proxy)
        assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
        assert mode_of(sock_path) == 0o660
        far = await make(["Q.*"])
        near = await unix_client(local, ["T.*"])
        try:
            await near.until(lambda c: len(c.events) > 20, 10 * scale)
            await far.until(lambda c: len(c.events) > 20, 10 * scale)
            assert all(wants(["T.*"], e) for e in near.events)
            assert all(wants(["Q.*"], e) for e in far.events)
            async with local.get("http://localhost/health/clients") as response:
                rows = await response.json()
            peers = {row["topics"][0]: row["peer"] for row in rows}
            assert peers == {"T.*": "unix", "Q.*": "127.0.0.1"}
        finally:
            await near.aclose()
    assert not exists(sock_path)  # removed on aclose


async def test_wrong_key_over_unix_fails_as_over_tcp(
    mock: MockServer, sock_path: str, scale: float
) -> None:
    async with proxy_for(mock.url, KEY, unix_path=sock_path), over_unix(sock_path) as local:
        client = Client(await local.ws_connect("ws://localhost/stocks"), [])
        statuses = await client.handshake("not-a-proxy-key")
        assert [s["status"] for s in statuses] == ["connected", "auth_failed"]
        message = await client.ws.receive(timeout=5 * scale)
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert client.ws.close_code != 1000
        await client.ws.close()
        assert not mock.sessions("stocks")


async def test_health_metrics_and_admin_over_unix(mock: MockServer, sock_path: str) -> None:
    async with proxy_for(mock.url, KEY, unix_path=sock_path), over_unix(sock_path) as local:
        async with local.get("http://localhost/health") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        async with local.get("http://localhost/metrics") as response:
            assert response.status == 200
            assert "massivekit_proxy_" in await response.text()
        async with local.get("http://localhost/admin/status") as response:
            assert response.status == 401  # the same bearer check as over TCP
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with local.get("http://localhost/admin/status", headers=headers) as response:
            assert response.status == 200


async def test_a_stale_socket_file_is_replaced(mock: MockServer, sock_path: str) -> None:
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(sock_path)
    crashed.close()  # the file stays behind, as after a crash; nobody listens
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    async with proxy_for(mock.url, KEY, unix_path=sock_path), over_unix(sock_path) as local:
        async with local.get("http://localhost/health") as response:
            assert response.status == 200
        assert mode_of(sock_path) == 0o660
    assert not exists(sock_path)


async def test_a_live_socket_is_not_taken(mock: MockServer, sock_path: str) -> None:
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        live.bind(sock_path)
        live.listen()
        before = os.stat(sock_path).st_ino
        proxy = proxy_for(mock.url, KEY, unix_path=sock_path)
        try:
            with pytest.raises(ConfigError, match="in use"):
                await proxy.start()
        finally:
            await proxy.aclose()
        assert os.stat(sock_path).st_ino == before
    finally:
        live.close()


@pytest.mark.parametrize("what", ["file", "directory"])
async def test_a_path_that_is_not_a_socket_is_refused(
    mock: MockServer, sock_path: str, what: str
) -> None:
    if what == "file":
        write(sock_path, "keep me")
    else:
        os.mkdir(sock_path)
    proxy = proxy_for(mock.url, KEY, unix_path=sock_path)
    try:
        with pytest.raises(ConfigError, match="not a socket"):
            await proxy.start()
    finally:
        await proxy.aclose()
    if what == "file":
        assert read(sock_path) == "keep me"
    else:
        assert stat.S_ISDIR(os.stat(sock_path).st_mode)


async def test_a_failed_bind_leaves_nothing_listening(
    mock: MockServer, http: aiohttp.ClientSession, sock_path: str
) -> None:
    missing = os.path.join(os.path.dirname(sock_path), "no-such-dir", "proxy.sock")
    proxy = proxy_for(mock.url, KEY, unix_path=missing)
    try:
        with pytest.raises(ConfigError, match="cannot listen"):
            await proxy.start()
        assert proxy.port != 0  # the TCP site had been bound...
        with pytest.raises(aiohttp.ClientConnectionError):  # ...and is closed again
            await http.get(proxy.url + "/health")
    finally:
        await proxy.aclose()


async def test_drain_stops_accepting_on_both_sockets(
    mock: MockServer, http: aiohttp.ClientSession, sock_path: str, scale: float
) -> None:
    proxy = proxy_for(mock.url, KEY, unix_path=sock_path)
    await proxy.start()
    try:
        async with over_unix(sock_path) as local:
            near = await unix_client(local, ["T.*"])
            try:
                await near.until(lambda c: len(c.events) > 10, 10 * scale)
                await proxy.drain(1.0 * scale)
                await near.until(lambda c: c.close_code is not None, 10 * scale)
                assert near.close_code == 1001
            finally:
                await near.aclose()
            assert not exists(sock_path)
            with pytest.raises(aiohttp.ClientError):
                await local.ws_connect("ws://localhost/stocks")
            with pytest.raises(aiohttp.ClientError):
                await http.ws_connect(proxy.ws_url("stocks"))
    finally:
        await proxy.aclose()


async def _proxy_process(mock: MockServer, unix: str) -> asyncio.subprocess.Process:
    """``massivekit proxy`` on ``mock`` and ``unix``: a real process, on uvloop as users run it."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "massivekit",
        "proxy",
        "--upstream",
        mock.url,
        "--upstream-key",
        KEY,
        "--client-key",
        CLIENT_KEY,
        "--unix",
        unix,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_cli_prints_the_unix_line_and_serves_there(
    mock: MockServer, sock_path: str, scale: float
) -> None:
    process = await _proxy_process(mock, sock_path)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        async with asyncio.timeout(T * scale):
            while not lines or not lines[-1].startswith("listening on unix:"):
                line = await process.stdout.readline()
                assert line, lines
                lines.append(line.decode().rstrip("\n"))
        assert lines[0].startswith("listening on http://127.0.0.1:")  # still the first line
        assert lines[-1] == f"listening on unix:{sock_path}"
        async with over_unix(sock_path) as local:
            client = Client(await local.ws_connect("ws://localhost/stocks"), [])
            statuses = await client.handshake()
            assert statuses[-1]["status"] == "auth_success"
            async with local.get("http://localhost/health/clients") as response:
                rows: list[dict[str, Any]] = await response.json()
            assert [row["peer"] for row in rows] == ["unix"]
            await client.aclose()
    finally:
        process.terminate()
        async with asyncio.timeout(T * scale):
            _, err = await process.communicate()
    assert process.returncode == 0, err
    assert not exists(sock_path)


async def test_cli_refuses_a_file_at_the_unix_path(
    mock: MockServer, sock_path: str, scale: float
) -> None:
    write(sock_path, "keep me")
    process = await _proxy_process(mock, sock_path)
    async with asyncio.timeout(T * scale):
        out, err = await process.communicate()
    assert process.returncode == 2
    assert b"not a socket" in err
    assert not out  # no "listening on" line for a proxy that did not start
    assert read(sock_path) == "keep me"
