"""The aiohttp socket adapter against real servers on loopback: the contract of socket.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import WSMsgType, web

from massivekit.errors import AuthError, ProtocolError, RequestTimeout, TransportError
from massivekit.mock.server import MockServer
from massivekit.mock.ws import Malformed
from massivekit.transport.socket import SocketConnection, aiohttp_connector

from .conftest import KEY


class Recorder:
    """A SocketListener that remembers everything and lets a test await it."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.messages: list[tuple[bytes | str, bool]] = []
        self.closes: list[tuple[int | None, str, BaseException | None]] = []
        self.pongs = 0
        self._fail_on = fail_on
        self._changed = asyncio.Event()

    def on_message(self, data: bytes | str, binary: bool) -> None:
        self.messages.append((data, binary))
        self._changed.set()
        if self._fail_on is not None and self._fail_on == data:
            raise RuntimeError("listener bug")

    def on_closed(self, code: int | None, reason: str, error: BaseException | None) -> None:
        self.closes.append((code, reason, error))
        self._changed.set()

    def on_pong(self) -> None:
        self.pongs += 1
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within: float) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def closed(self) -> tuple[int | None, str, BaseException | None]:
        assert len(self.closes) == 1, f"on_closed must come exactly once: {self.closes}"
        return self.closes[0]


@pytest.fixture
def t(scale: float) -> float:
    return 10.0 * scale


async def open_mock(mock: MockServer, recorder: Recorder, t: float) -> SocketConnection:
    conn = await aiohttp_connector().connect(mock.ws_url("stocks"), recorder, timeout=t)
    await conn.send(json.dumps({"action": "auth", "params": KEY}))
    await recorder.until(lambda: any(b"auth_success" in m for m, _ in recorder.messages), t)
    return conn


async def test_messages_in_order_pongs_and_a_clean_close(mock: MockServer, t: float) -> None:
    recorder = Recorder()
    conn = await open_mock(mock, recorder, t)
    await conn.send('{"action":"subscribe","params":"T.*"}')
    conn.ping()
    await recorder.until(lambda: recorder.pongs >= 1 and len(recorder.messages) >= 10, t)
    first, binary = recorder.messages[0]
    assert isinstance(first, bytes), "TEXT frames arrive as bytes"
    assert not binary
    assert b"connected" in first
    await conn.close()
    code, _, error = recorder.closed
    assert code == 1000
    assert error is None
    await conn.close()  # idempotent
    assert len(recorder.closes) == 1
    with pytest.raises(TransportError):
        await conn.send("{}")


async def test_drop_without_close_frame_reports_no_code(mock: MockServer, t: float) -> None:
    recorder = Recorder()
    conn = await open_mock(mock, recorder, t)
    await mock.drop_connections()
    await recorder.until(lambda: bool(recorder.closes), t)
    assert recorder.closed == (None, "", None)
    await conn.close()
    assert len(recorder.closes) == 1


async def test_server_close_code_and_reason(mock: MockServer, t: float) -> None:
    recorder = Recorder()
    conn = await open_mock(mock, recorder, t)
    await mock.close_connections(1011)
    await recorder.until(lambda: bool(recorder.closes), t)
    code, reason, error = recorder.closed
    assert (code, reason, error) == (1011, "mock close", None)
    await conn.close()


async def test_abort_reports_once_then_close_releases(mock: MockServer, t: float) -> None:
    recorder = Recorder()
    conn = await open_mock(mock, recorder, t)
    conn.abort()
    assert recorder.closed == (None, "aborted", None)
    await conn.close()
    await mock.wait_for(lambda: not mock.sessions("stocks"), within=t)
    assert len(recorder.closes) == 1


async def test_oversize_message_fails_the_connection(mock: MockServer, t: float) -> None:
    recorder = Recorder()
    conn = await aiohttp_connector().connect(
        mock.ws_url("stocks"), recorder, timeout=t, max_message_bytes=64 * 1024
    )
    await conn.send(json.dumps({"action": "auth", "params": KEY}))
    await mock.wait_for(lambda: any(s.ready for s in mock.sessions("stocks")), within=t)
    mock.send_malformed(Malformed.OVERSIZE)
    await recorder.until(lambda: bool(recorder.closes), t)
    _, _, error = recorder.closed
    assert isinstance(error, ProtocolError)
    assert "1009" in str(error)
    await conn.close()


async def test_a_listener_bug_ends_the_connection_visibly(mock: MockServer, t: float) -> None:
    greeting = b'[{"ev":"status","status":"connected","message":"Connected Successfully"}]'
    recorder = Recorder(fail_on=greeting)
    conn = await aiohttp_connector().connect(mock.ws_url("stocks"), recorder, timeout=t)
    await recorder.until(lambda: bool(recorder.closes), t)
    _, _, error = recorder.closed
    assert isinstance(error, RuntimeError)
    await conn.close()


async def test_connect_refused(unused_tcp_port: int, t: float) -> None:
    with pytest.raises(TransportError, match="cannot connect"):
        await aiohttp_connector().connect(
            f"ws://127.0.0.1:{unused_tcp_port}/x", Recorder(), timeout=t
        )


async def test_connect_timeout_when_the_upgrade_never_comes(scale: float) -> None:
    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # accept, never answer

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(RequestTimeout):
            await aiohttp_connector().connect(f"ws://127.0.0.1:{port}/", Recorder(), timeout=0.2)
        assert writers, "the TCP connection was made; only the upgrade never came"
        for writer in writers:
            writer.close()
            await writer.wait_closed()


@pytest.fixture
async def plain_server() -> AsyncIterator[str]:
    """An aiohttp server: /denied answers 401, /pinger pings and records pongs."""
    pongs: list[bytes] = []

    async def denied(request: web.Request) -> web.StreamResponse:
        raise web.HTTPUnauthorized()

    async def pinger(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"hello")
        async for msg in ws:
            if msg.type is WSMsgType.PONG:
                pongs.append(msg.data)
                await ws.send_str(json.dumps({"pong": msg.data.decode()}))
        return ws

    app = web.Application()
    app.router.add_get("/denied", denied)
    app.router.add_get("/pinger", pinger)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    await runner.cleanup()


async def test_upgrade_refusals_map_to_errors(
    mock: MockServer, plain_server: str, t: float
) -> None:
    with pytest.raises(AuthError) as denied:
        await aiohttp_connector().connect(f"{plain_server}/denied", Recorder(), timeout=t)
    assert denied.value.status == 401
    with pytest.raises(TransportError) as missing:
        await aiohttp_connector().connect(f"{mock.url}/nowhere", Recorder(), timeout=t)
    assert missing.value.status == 404


async def test_server_pings_are_answered(plain_server: str, t: float) -> None:
    recorder = Recorder()
    conn = await aiohttp_connector().connect(f"{plain_server}/pinger", recorder, timeout=t)
    await recorder.until(lambda: bool(recorder.messages), t)
    assert recorder.messages[0] == (b'{"pong": "hello"}', False)
    await conn.close()


async def test_divert_sends_messages_elsewhere_and_pongs_still_arrive(
    mock: MockServer, t: float
) -> None:
    recorder = Recorder()
    conn = await open_mock(mock, recorder, t)
    diverted = Recorder()
    conn.divert(diverted.on_message)
    mock.inject("stocks", b'[{"ev":"status","status":"n","message":"after"}]')
    await diverted.until(lambda: any(b"after" in m for m, _ in diverted.messages), t)
    assert not any(b"after" in m for m, _ in recorder.messages)
    conn.ping()
    await recorder.until(lambda: recorder.pongs >= 1, t)
    await conn.close()
    assert recorder.closed[0] == 1000, "the close still reaches the listener"


async def test_divert_with_convert_gathers_and_refused_messages_keep_their_order(
    mock: MockServer, t: float
) -> None:
    recorder = Recorder()
    conn = await open_mock(mock, recorder, t)
    into: list[bytes | str] = []
    seen: list[bytes | str] = []
    changed = asyncio.Event()

    def convert(data: bytes | str) -> bytes | str:
        if "keep" not in str(data):
            raise ValueError("not mine")
        return data

    def flush() -> None:
        seen.extend(into)
        into.clear()
        changed.set()

    def deliver(data: bytes | str, binary: bool) -> None:
        seen.append(data)
        changed.set()

    conn.divert(deliver, flush, convert=convert, into=into)
    frames = [b'["keep",1]', b'["other"]', b'["keep",2]']
    for frame in frames:
        mock.inject("stocks", frame)
    async with asyncio.timeout(t):
        while len(seen) < len(frames):
            changed.clear()
            await changed.wait()
    assert [s if isinstance(s, bytes) else s.encode() for s in seen] == frames
    assert conn.bytes_received >= sum(len(f) for f in frames)
    await conn.close()
