"""The picows adapter keeps the SocketConnector contract, against real servers on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import cast

import pytest
from aiohttp import web

from massivekit.errors import AuthError, ProtocolError, RequestTimeout, TransportError
from massivekit.mock.server import MockServer
from massivekit.mock.ws import FloodMode, Malformed
from massivekit.transport.socket import DEFAULT_MAX_MESSAGE, SocketConnection
from massivekit.transport.socket_picows import PicowsConnection, picows_connector

from .conftest import KEY

T = 10.0  # seconds: every wait in this file is bounded by it


class Recorder:
    """A SocketListener that keeps what it is told and lets tests await it."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes | str, bool]] = []
        self.closes: list[tuple[int | None, str, BaseException | None]] = []
        self.pongs = 0
        self.raise_on: bytes | None = None
        self._changed = asyncio.Event()

    def on_message(self, data: bytes | str, binary: bool) -> None:
        self.messages.append((data, binary))
        self._changed.set()
        if self.raise_on is not None and isinstance(data, bytes) and self.raise_on in data:
            raise RuntimeError("listener bug")

    def on_closed(self, code: int | None, reason: str, error: BaseException | None) -> None:
        self.closes.append((code, reason, error))
        self._changed.set()

    def on_pong(self) -> None:
        self.pongs += 1
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(T):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def closed(self) -> tuple[int | None, str, BaseException | None]:
        await self.until(lambda: bool(self.closes))
        return self.closes[0]

    def texts(self) -> list[bytes]:
        return [data for data, _ in self.messages if isinstance(data, bytes)]


async def connect(
    url: str, recorder: Recorder, max_message_bytes: int = DEFAULT_MAX_MESSAGE
) -> SocketConnection:
    return await picows_connector().connect(
        url, recorder, timeout=T, max_message_bytes=max_message_bytes
    )


async def login(
    mock: MockServer, recorder: Recorder, max_message_bytes: int = DEFAULT_MAX_MESSAGE
) -> SocketConnection:
    connection = await connect(mock.ws_url("stocks"), recorder, max_message_bytes)
    await connection.send(json.dumps({"action": "auth", "params": KEY}))
    await recorder.until(lambda: any(b"auth_success" in m for m in recorder.texts()))
    return connection


async def test_handshake_delivers_text_frames_as_bytes(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await connect(mock.ws_url("stocks"), recorder)
    await recorder.until(lambda: bool(recorder.messages))
    data, binary = recorder.messages[0]
    assert data == b'[{"ev":"status","status":"connected","message":"Connected Successfully"}]'
    assert binary is False
    await connection.close()
    assert recorder.closes == [(1000, "", None)]


async def test_messages_arrive_in_order(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    for i in range(50):
        mock.inject("stocks", b'[{"ev":"status","status":"n","message":"%d"}]' % i)
    marker = b'"message":"49"'
    await recorder.until(lambda: any(marker in m for m in recorder.texts()))
    numbered = [json.loads(m)[0]["message"] for m in recorder.texts() if b'"status":"n"' in m]
    assert numbered == [str(i) for i in range(50)]
    await connection.close()


async def test_ping_gets_a_pong(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await connect(mock.ws_url("stocks"), recorder)
    connection.ping()
    connection.ping()
    await recorder.until(lambda: recorder.pongs == 2)
    await connection.close()


@pytest.mark.parametrize("code", [1011, 4001])
async def test_server_close_code_reaches_the_listener(mock: MockServer, code: int) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    await mock.close_connections(code)
    assert await recorder.closed() == (code, "mock close", None)
    await connection.close()  # safe after the peer closed
    assert len(recorder.closes) == 1


async def test_drop_without_close_frame_reports_no_code(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    await mock.drop_connections()
    code, _, error = await recorder.closed()
    assert code is None
    assert error is None
    with pytest.raises(TransportError):
        await connection.send("{}")
    await connection.close()
    assert len(recorder.closes) == 1


async def test_client_close_sends_our_code(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    await connection.close(4000, "bye")
    await connection.close()  # idempotent
    assert len(recorder.closes) == 1
    await mock.wait_for(lambda: not mock.sessions("stocks"), within=T)


async def test_abort_drops_at_once_and_notifies_once(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    connection.abort()
    assert recorder.closes == [(None, "aborted", None)]
    await connection.close()
    await mock.wait_for(lambda: not mock.sessions("stocks"), within=T)
    assert len(recorder.closes) == 1


async def test_oversize_message_fails_the_connection(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder, max_message_bytes=64 * 1024)
    mock.send_malformed(Malformed.OVERSIZE)
    _, _, error = await recorder.closed()
    assert isinstance(error, ProtocolError)
    assert "1009" in str(error)
    await connection.close()


async def test_a_listener_that_raises_ends_the_connection(mock: MockServer) -> None:
    recorder = Recorder()
    recorder.raise_on = b"boom"
    connection = await login(mock, recorder)
    mock.inject("stocks", b'[{"ev":"status","status":"boom","message":""}]')
    _, _, error = await recorder.closed()
    assert isinstance(error, RuntimeError)
    assert str(error) == "listener bug"
    await connection.close()


async def test_binary_and_fragmented_messages() -> None:
    async def fragments(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        assert request.transport is not None
        # A stray CONTINUATION (ignored); TEXT "ab" not final, CONTINUATION "cd"
        # final; then BINARY, final.
        request.transport.write(
            b"\x80\x02zz" + b"\x01\x02ab" + b"\x80\x02cd" + b"\x82\x03\x00\x01\x02"
        )
        async for _ in ws:
            pass
        return ws

    async with serve(fragments) as url:
        recorder = Recorder()
        connection = await connect(url, recorder)
        await recorder.until(lambda: len(recorder.messages) == 2)
        assert recorder.messages == [(b"abcd", False), (b"\x00\x01\x02", True)]
        await connection.close()


async def test_fragmented_message_over_the_limit_fails() -> None:
    async def fragments(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        assert request.transport is not None
        request.transport.write(b"\x01\x7e\x00\xc8" + b"a" * 200 + b"\x80\x7e\x00\xc8" + b"b" * 200)
        async for _ in ws:
            pass
        return ws

    async with serve(fragments) as url:
        recorder = Recorder()
        connection = await connect(url, recorder, max_message_bytes=300)
        _, _, error = await recorder.closed()
        assert isinstance(error, ProtocolError)
        assert not recorder.messages
        await connection.close()


@pytest.mark.parametrize(("code", "seen"), [(4000, 4000), (1001, 1001), (999, 1000)])
async def test_close_codes_reach_the_server(code: int, seen: int) -> None:
    codes: list[int | None] = []

    async def record(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        codes.append(ws.close_code)
        return ws

    async with serve(record) as url:
        recorder = Recorder()
        connection = await connect(url, recorder)
        await connection.close(code, "bye")  # an invalid code goes out as 1000
        await recorder.closed()
    assert codes == [seen]


async def test_send_waits_while_the_socket_is_backed_up(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    adapter = cast(PicowsConnection, connection)
    async with asyncio.timeout(T):
        adapter.pause_writing()  # what the transport says past its high-water mark
        sending = asyncio.create_task(connection.send("{}"))
        await asyncio.sleep(0)
        assert not sending.done()
        adapter.resume_writing()
        await sending
        adapter.pause_writing()
        stuck = asyncio.create_task(connection.send("{}"))
        await asyncio.sleep(0)
        await mock.drop_connections()  # the end of the connection wakes it too
        await stuck
    await connection.close()


async def test_upgrade_refused_with_401_is_an_auth_error() -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text="no")

    async with serve(refuse) as url:
        with pytest.raises(AuthError) as info:
            await connect(url, Recorder())
        assert info.value.status == 401


async def test_upgrade_refused_with_404_is_a_transport_error() -> None:
    async def missing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404)

    async with serve(missing) as url:
        with pytest.raises(TransportError) as info:
            await connect(url, Recorder())
        assert info.value.status == 404


async def test_connection_refused_is_a_transport_error() -> None:
    async with serve(None) as url:
        pass  # the port is free again
    with pytest.raises(TransportError, match="cannot connect"):
        await connect(url, Recorder())


async def test_silent_server_times_out() -> None:
    accepted = asyncio.Event()
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answers the upgrade; returns when the client hangs up
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(RequestTimeout):
            await picows_connector().connect(f"ws://127.0.0.1:{port}/", Recorder(), timeout=0.2)
        assert accepted.is_set()
        async with asyncio.timeout(T):
            await hung_up.wait()  # the half-open socket was not left behind


@pytest.mark.parametrize("read_chunk", [0, 1_000, 64 * 1024])
async def test_paced_reads_deliver_every_frame_whole(read_chunk: int) -> None:
    # 100-event frames of ~12 kB: with 1 kB reads each spans many reads.
    flood = FloodMode(frame_events=100, frames=30, loop=False)
    async with MockServer([KEY], seed=2, flood=flood) as mock:
        recorder = Recorder()
        connector = picows_connector(read_chunk=read_chunk)
        connection = await connector.connect(mock.ws_url("stocks"), recorder, timeout=T)
        await connection.send(json.dumps({"action": "auth", "params": KEY}))
        await connection.send('{"action":"subscribe","params":"T.*,Q.*,A.*,AM.*,LULD.*,NOI.*"}')

        def data() -> list[bytes]:
            return [m for m in recorder.texts() if b'"ev":"status"' not in m]

        await recorder.until(lambda: len(data()) == 30)
        assert [len(json.loads(m)) for m in data()] == [100] * 30
        await connection.close()


def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None,
) -> _Served:
    return _Served(handler)


class _Served:
    """A one-route aiohttp server on loopback port 0, as an async context manager."""

    def __init__(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None
    ) -> None:
        self._handler = handler
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        app = web.Application()
        if self._handler is not None:
            app.router.add_get("/", self._handler)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"ws://127.0.0.1:{port}/"

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_divert_sends_messages_elsewhere_and_pongs_still_arrive(mock: MockServer) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    diverted = Recorder()
    connection.divert(diverted.on_message)
    mock.inject("stocks", b'[{"ev":"status","status":"n","message":"after"}]')
    await diverted.until(lambda: any(b"after" in m for m in diverted.texts()))
    assert not any(b"after" in m for m in recorder.texts())
    connection.ping()
    await recorder.until(lambda: recorder.pongs >= 1)
    await connection.close()
    assert recorder.closes == [(1000, "", None)], "the close still reaches the listener"


async def test_divert_with_convert_gathers_and_refused_messages_keep_their_order(
    mock: MockServer,
) -> None:
    recorder = Recorder()
    connection = await login(mock, recorder)
    into: list[bytes] = []
    seen: list[bytes] = []
    changed = asyncio.Event()

    def convert(data: bytes | str) -> bytes:
        assert isinstance(data, bytes)
        if b"keep" not in data:
            raise ValueError("not mine")
        return data

    def flush() -> None:  # after each read: hand on what was gathered
        seen.extend(into)
        into.clear()
        changed.set()

    def deliver(data: bytes | str, binary: bool) -> None:  # what convert refused
        assert isinstance(data, bytes)
        seen.append(data)
        changed.set()

    connection.divert(deliver, flush, convert=convert, into=into)
    frames = [b'["keep",1]', b'["keep",2]', b'["other"]', b'["keep",3]']
    for frame in frames:
        mock.inject("stocks", frame)
    async with asyncio.timeout(T):
        while len(seen) < len(frames):
            changed.clear()
            await changed.wait()
    assert seen == frames, "converted and refused messages in their order"
    assert connection.bytes_received > sum(len(f) for f in frames)
    connection.divert(recorder.on_message)  # back to the listener, no conversion
    mock.inject("stocks", b'["keep",4]')
    await recorder.until(lambda: b'["keep",4]' in recorder.texts())
    await connection.close()
