"""The connection actor with the generic JSON and JSON-RPC handlers, against loopback servers.

Each server here is a small aiohttp WebSocket app on 127.0.0.1, port 0,
written for the test: it speaks the protocol, records what it receives, and
can misbehave on demand (refuse topics, ignore pings, go silent, drop).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import WSMsgType, web

from massivekit.errors import (
    AuthError,
    RequestTimeout,
    StreamClosed,
    SubscriptionRefused,
    TransportError,
)
from massivekit.transport.backoff import BackoffPolicy
from massivekit.transport.connection import Connection, ConnectionConfig, Heartbeat
from massivekit.transport.events import ConnectionEvent, ConnectionState
from massivekit.transport.handlers.generic_json import GenericJsonHandler, JsonSpec
from massivekit.transport.handlers.jsonrpc import JsonRpcHandler, JsonRpcSpec
from massivekit.transport.requests import RequestFailed
from massivekit.transport.socket import SocketConnector, aiohttp_connector
from massivekit.transport.socket_picows import picows_connector

FAST = BackoffPolicy(initial=0.01, max_delay=0.05, jitter=False)


@dataclass(eq=False)
class Peer:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    topics: set[str] = field(default_factory=set)
    received: list[Any] = field(default_factory=list)


class LoopbackServer:
    """A WebSocket server for tests; subclasses answer messages in ``answer``."""

    def __init__(self, *, autoping: bool = True) -> None:
        self.peers: list[Peer] = []
        self.received: list[Any] = []
        self.connections = 0
        self.autoping = autoping
        self.refuse: set[str] = set()
        self.answer_pings = True
        self.ignore: set[str] = set()
        self.key: str | None = None
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> LoopbackServer:
        app = web.Application()
        app.router.add_get("/ws", self._handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.drop()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=self.autoping)
        await ws.prepare(request)
        peer = Peer(ws, request.transport)
        self.connections += 1
        self.peers.append(peer)
        self._notify()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                peer.received.append(message)
                self.received.append(message)
                for reply in self.answer(peer, message):
                    await ws.send_str(json.dumps(reply))
                self._notify()
        finally:
            self.peers.remove(peer)
            self._notify()
        return ws

    def answer(self, peer: Peer, message: Any) -> list[Any]:
        raise NotImplementedError

    def _notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], within: float) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def publish(self, topic: str, payload: Any) -> int:
        sent = 0
        for peer in list(self.peers):
            if topic in peer.topics:
                await peer.ws.send_str(json.dumps(payload))
                sent += 1
        return sent

    async def send_all(self, message: Any) -> None:
        for peer in list(self.peers):
            await peer.ws.send_str(json.dumps(message))

    def drop(self) -> None:
        for peer in list(self.peers):
            if peer.transport is not None:
                peer.transport.abort()

    def log(self, op: str, key: str = "op") -> list[Any]:
        return [m for m in self.received if isinstance(m, dict) and m.get(key) == op]


class JsonServer(LoopbackServer):
    """``{"op": ..., "id": ..., "args": [...]}`` in, answers by id, updates with ``topic``."""

    def answer(self, peer: Peer, message: Any) -> list[Any]:
        op, request_id = message.get("op"), message.get("id")
        if op == "auth":
            ok = message.get("key") == self.key
            return [{"op": "auth", "success": ok} if ok else {"op": "auth", "error": "bad key"}]
        if op == "ping":
            return [{"op": "pong"}] if self.answer_pings else []
        if op in ("subscribe", "unsubscribe"):
            topics = message["args"]
            refused = [t for t in topics if t in self.refuse]
            if refused:
                return [{"id": request_id, "error": f"not allowed: {','.join(refused)}"}]
            if op == "subscribe":
                peer.topics.update(topics)
            else:
                peer.topics.difference_update(topics)
            return [{"id": request_id, "success": True}]
        if op in self.ignore:
            return []
        if op == "fail":
            return [{"id": request_id, "error": "it failed"}]
        return [{"id": request_id, "result": message.get("params")}]


class RpcServer(LoopbackServer):
    """JSON-RPC 2.0: ``subscribe``/``unsubscribe`` with ``channels``, ``login``, notifications."""

    def answer(self, peer: Peer, message: Any) -> list[Any]:
        method, request_id = message.get("method"), message.get("id")
        if method is None:
            return []  # a response from the client (to our ping)
        if method == "login":
            if message.get("params", {}).get("token") == self.key:
                return [{"jsonrpc": "2.0", "id": request_id, "result": True}]
            return [{"jsonrpc": "2.0", "id": request_id, "error": {"code": 401, "message": "no"}}]
        if method in ("subscribe", "unsubscribe"):
            channels = message["params"]["channels"]
            if any(c in self.refuse for c in channels):
                error = {"code": 403, "message": "forbidden channel"}
                return [{"jsonrpc": "2.0", "id": request_id, "error": error}]
            if method == "subscribe":
                peer.topics.update(channels)
            else:
                peer.topics.difference_update(channels)
            return [{"jsonrpc": "2.0", "id": request_id, "result": channels}]
        if method == "quote":
            result = {"bid": 1.5, "ask": 1.75}
            return [{"jsonrpc": "2.0", "id": request_id, "result": result}]
        return [{"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601}}]


class Updates:
    """The update sink of a connection, awaitable."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, str | None]] = []
        self._changed = asyncio.Event()

    def __call__(self, payload: Any, topic: str | None) -> None:
        self.items.append((payload, topic))
        self._changed.set()

    async def until(self, count: int, within: float) -> None:
        async with asyncio.timeout(within):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()


class Events:
    """Connection events, recorded as they come."""

    def __init__(self) -> None:
        self.seen: list[ConnectionEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ConnectionEvent) -> None:
        self.seen.append(event)
        self._changed.set()

    def states(self) -> list[ConnectionState]:
        return [e.state for e in self.seen]

    async def until(
        self, predicate: Callable[[ConnectionEvent], bool], within: float
    ) -> ConnectionEvent:
        async with asyncio.timeout(within):
            while True:
                for event in self.seen:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()


CONNECTORS: dict[str, Callable[[], SocketConnector]] = {
    "aiohttp": aiohttp_connector,
    "picows": picows_connector,
}
_library = ["picows"]


@pytest.fixture(autouse=True, params=sorted(CONNECTORS))
def library(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs on each socket adapter: the actor must not care which."""
    _library[0] = request.param
    yield request.param
    _library[0] = "picows"


@pytest.fixture
def t(scale: float) -> float:
    return 10.0 * scale


@pytest.fixture
async def json_server() -> AsyncIterator[JsonServer]:
    async with JsonServer() as server:
        yield server


@pytest.fixture
async def rpc_server() -> AsyncIterator[RpcServer]:
    async with RpcServer() as server:
        yield server


def connection(
    url: str,
    handler: Any,
    sink: Updates,
    events: Events | None = None,
    **config: Any,
) -> Connection:
    config.setdefault("backoff", FAST)
    config.setdefault("heartbeat", Heartbeat(interval=None))
    return Connection(
        url, handler, on_update=sink, config=ConnectionConfig(**config), on_event=events
    )


# -- generic JSON ------------------------------------------------------------------------------


async def test_subscribe_confirm_updates_and_shared_topics(
    json_server: JsonServer, t: float
) -> None:
    updates = Updates()
    handler = GenericJsonHandler(JsonSpec(data="data"))
    async with connection(json_server.url, handler, updates) as conn:
        await conn.wait_ready(t)
        await conn.subscribe(["trades.BTC"], owner="a", confirm=True)
        await conn.subscribe(["trades.BTC"], owner="b", confirm=True)
        assert len(json_server.log("subscribe")) == 1, "two holders, one upstream subscription"
        await json_server.publish("trades.BTC", {"topic": "trades.BTC", "data": {"p": 1}})
        await updates.until(1, t)
        assert updates.items == [({"p": 1}, "trades.BTC")]
        await conn.unsubscribe(["trades.BTC"], owner="a")
        await conn.request("sync", timeout=t)  # every message before it has been read
        assert json_server.log("unsubscribe") == []
        await conn.unsubscribe(["trades.BTC"], owner="b")
        await json_server.wait_for(lambda: len(json_server.log("unsubscribe")) == 1, t)
        assert json_server.log("unsubscribe")[0]["args"] == ["trades.BTC"]


async def test_resubscribe_in_batches_after_a_drop_despite_a_refusal(
    json_server: JsonServer, t: float
) -> None:
    updates, events = Updates(), Events()
    topics = [f"book.{n}" for n in range(5)]
    async with connection(
        json_server.url, GenericJsonHandler(), updates, events, batch_size=2
    ) as conn:
        await conn.wait_ready(t)
        await conn.subscribe(topics, confirm=True)
        json_server.refuse = {"book.0", "book.1"}  # their batch is refused after the reconnect
        json_server.received.clear()
        json_server.drop()
        await events.until(lambda e: e.state is ConnectionState.RECONNECTING, t)
        await json_server.wait_for(lambda: len(json_server.log("subscribe")) == 3, t)
        batches = [m["args"] for m in json_server.log("subscribe")]
        assert batches == [["book.0", "book.1"], ["book.2", "book.3"], ["book.4"]]
        await json_server.wait_for(
            lambda: bool(json_server.peers) and json_server.peers[0].topics == set(topics[2:]), t
        )
        await conn.request("sync", timeout=t)
        assert conn.subscriptions.refused == dict.fromkeys(topics[:2], "not allowed: book.0,book.1")
        assert conn.subscriptions.upstream == frozenset(topics[2:])
        with pytest.raises(SubscriptionRefused) as refused:
            await conn.subscribe(["book.0"], confirm=True)
        assert refused.value.topics == ("book.0",)


async def test_server_asks_to_reconnect_now(json_server: JsonServer, t: float) -> None:
    events = Events()
    async with connection(json_server.url, GenericJsonHandler(), Updates(), events) as conn:
        await conn.wait_ready(t)
        await conn.subscribe(["x.1"], confirm=True)
        await json_server.send_all({"op": "reconnect", "message": "maintenance"})
        event = await events.until(lambda e: e.state is ConnectionState.RECONNECTING, t)
        assert event.reason == "reconnect"
        assert event.delay == 0.0
        await events.until(lambda e: e.state is ConnectionState.READY and conn.sessions == 2, t)
        await json_server.wait_for(lambda: len(json_server.log("subscribe")) == 2, t)


async def test_protocol_heartbeat_keeps_a_live_session(json_server: JsonServer, t: float) -> None:
    heartbeat = Heartbeat(interval=0.02, timeout=t, protocol=True)
    async with connection(
        json_server.url, GenericJsonHandler(), Updates(), heartbeat=heartbeat
    ) as conn:
        await conn.wait_ready(t)
        await json_server.wait_for(lambda: len(json_server.log("ping")) >= 5, t)
        assert conn.state is ConnectionState.READY
        assert conn.sessions == 1


async def test_protocol_pong_timeout_reconnects(json_server: JsonServer, t: float) -> None:
    json_server.answer_pings = False
    events = Events()
    heartbeat = Heartbeat(interval=0.02, timeout=0.05, protocol=True)
    async with connection(
        json_server.url, GenericJsonHandler(), Updates(), events, heartbeat=heartbeat
    ):
        event = await events.until(lambda e: e.state is ConnectionState.RECONNECTING, t)
        assert event.reason == "pong_timeout"
        assert isinstance(event.error, RequestTimeout)


async def test_websocket_pong_timeout_reconnects(t: float) -> None:
    events = Events()
    heartbeat = Heartbeat(interval=0.02, timeout=0.05)
    async with (
        JsonServer(autoping=False) as mute,  # never answers WebSocket pings
        connection(mute.url, GenericJsonHandler(), Updates(), events, heartbeat=heartbeat),
    ):
        event = await events.until(lambda e: e.state is ConnectionState.RECONNECTING, t)
        assert event.reason == "pong_timeout"


async def test_websocket_heartbeat_against_a_server_that_answers(
    json_server: JsonServer, t: float
) -> None:
    events = Events()
    heartbeat = Heartbeat(interval=0.01, timeout=t)
    async with connection(
        json_server.url, GenericJsonHandler(), Updates(), events, heartbeat=heartbeat
    ) as conn:
        await conn.wait_ready(t)
        for _ in range(5):  # many ping/pong rounds, each a request round trip apart
            await conn.request("sync", timeout=t)
        assert ConnectionState.RECONNECTING not in events.states()


async def test_silence_watchdog_reconnects(json_server: JsonServer, t: float) -> None:
    events = Events()
    async with connection(
        json_server.url, GenericJsonHandler(), Updates(), events, silence_timeout=0.1
    ):
        event = await events.until(lambda e: e.state is ConnectionState.RECONNECTING, t)
        assert event.reason == "silence"
        assert event.attempt == 1
        await events.until(lambda e: e.state is ConnectionState.RECONNECTING and e.attempt == 2, t)


async def test_requests_typed_failed_and_timed_out(json_server: JsonServer, t: float) -> None:
    class Echo(msgspec.Struct):
        n: int

    json_server.ignore = {"slow"}
    async with connection(json_server.url, GenericJsonHandler(), Updates()) as conn:
        await conn.wait_ready(t)
        assert await conn.request("echo", {"n": 3}, result_type=Echo) == Echo(3)
        assert await conn.request("echo", [1, 2]) == [1, 2]
        with pytest.raises(RequestFailed) as failed:
            await conn.request("fail")
        assert failed.value.error == "it failed"
        with pytest.raises(RequestTimeout):
            await conn.request("slow", timeout=0.05)


async def test_request_capacity(json_server: JsonServer, t: float) -> None:
    json_server.ignore = {"slow"}
    async with connection(json_server.url, GenericJsonHandler(), Updates(), max_pending=1) as conn:
        await conn.wait_ready(t)
        first = asyncio.ensure_future(conn.request("slow", timeout=t))
        await json_server.wait_for(lambda: bool(json_server.log("slow")), t)
        with pytest.raises(TransportError, match="too many"):
            await conn.request("echo")
        first.cancel()
        await asyncio.wait([first])


async def test_in_flight_request_fails_on_drop_queued_one_is_sent_after(
    json_server: JsonServer, t: float
) -> None:
    json_server.ignore = {"slow"}
    events = Events()
    async with connection(json_server.url, GenericJsonHandler(), Updates(), events) as conn:
        await conn.wait_ready(t)
        in_flight = asyncio.ensure_future(conn.request("slow", timeout=t))
        await json_server.wait_for(lambda: bool(json_server.log("slow")), t)
        json_server.drop()
        with pytest.raises(TransportError, match="connection lost"):
            await in_flight
        assert conn.state is not ConnectionState.READY
        queued = await conn.request("echo", "while away", timeout=t)  # issued while reconnecting
        assert queued == "while away"
        assert conn.sessions == 2


async def test_auth_failure_is_terminal(json_server: JsonServer, t: float) -> None:
    json_server.key = "right"
    events = Events()
    handler = GenericJsonHandler(JsonSpec(auth={"op": "auth", "key": "wrong"}))
    async with connection(json_server.url, handler, Updates(), events) as conn:
        with pytest.raises(AuthError):
            await conn.wait_ready(t)
        assert events.states()[-1] is ConnectionState.CLOSED
        assert ConnectionState.RECONNECTING not in events.states()
        with pytest.raises(AuthError):
            await conn.subscribe(["x.1"])
    async with connection(
        json_server.url,
        GenericJsonHandler(JsonSpec(auth={"op": "auth", "key": "right"})),
        Updates(),
    ) as good:
        await good.wait_ready(t)


async def test_attempt_cap_ends_the_connection(unused_tcp_port: int, t: float) -> None:
    events = Events()
    backoff = BackoffPolicy(initial=0.01, jitter=False, max_attempts=2)
    url = f"ws://127.0.0.1:{unused_tcp_port}/ws"
    async with connection(url, GenericJsonHandler(), Updates(), events, backoff=backoff) as conn:
        closed = await events.until(lambda e: e.state is ConnectionState.CLOSED, t)
        assert isinstance(closed.error, TransportError)
        assert [e.attempt for e in events.seen if e.state is ConnectionState.RECONNECTING] == [1, 2]
        with pytest.raises(TransportError):
            await conn.wait_ready(t)
    with pytest.raises(TransportError):
        await conn.subscribe(["late.1"])  # the terminal error, again


async def test_commands_after_aclose_raise_stream_closed(json_server: JsonServer, t: float) -> None:
    async with connection(json_server.url, GenericJsonHandler(), Updates()) as conn:
        await conn.wait_ready(t)
    assert conn.error is None
    with pytest.raises(StreamClosed):
        await conn.subscribe(["late.1"])
    with pytest.raises(StreamClosed):
        await conn.request("echo")


async def test_event_stream_ends_after_closed(json_server: JsonServer, t: float) -> None:
    conn = connection(json_server.url, GenericJsonHandler(), Updates())
    stream = conn.events()
    async with asyncio.timeout(t):
        async with conn:
            await conn.wait_ready(t)
        states = [event.state async for event in stream]
    assert states == [
        ConnectionState.CONNECTING,
        ConnectionState.AUTHENTICATING,
        ConnectionState.READY,
        ConnectionState.CLOSING,
        ConnectionState.CLOSED,
    ]
    assert [e async for e in conn.events()] == []


# -- JSON-RPC 2.0 ------------------------------------------------------------------------------


class Quote(msgspec.Struct):
    bid: float
    ask: float


async def test_jsonrpc_auth_subscribe_notifications_and_requests(
    rpc_server: RpcServer, t: float
) -> None:
    rpc_server.key = "t0k"
    rpc_server.refuse = {"secret"}
    updates = Updates()
    handler = JsonRpcHandler(JsonRpcSpec(auth_method="login", auth_params={"token": "t0k"}))
    async with connection(rpc_server.url, handler, updates) as conn:
        await conn.wait_ready(t)
        await conn.subscribe(["ticker.BTC"], confirm=True)
        note = {
            "jsonrpc": "2.0",
            "method": "update",
            "params": {"channel": "ticker.BTC", "data": [7]},
        }
        await rpc_server.publish("ticker.BTC", note)
        await updates.until(1, t)
        assert updates.items == [([7], "ticker.BTC")]
        assert await conn.request("quote", {"sym": "BTC"}, result_type=Quote) == Quote(1.5, 1.75)
        with pytest.raises(RequestFailed):
            await conn.request("nope")
        with pytest.raises(SubscriptionRefused) as refused:
            await conn.subscribe(["secret"], confirm=True)
        assert refused.value.topics == ("secret",)
        assert "forbidden channel" in str(refused.value)


async def test_jsonrpc_server_ping_requests_are_answered(rpc_server: RpcServer, t: float) -> None:
    async with connection(rpc_server.url, JsonRpcHandler(), Updates()) as conn:
        await conn.wait_ready(t)
        await rpc_server.send_all({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"})
        await rpc_server.wait_for(
            lambda: any(m.get("id") == "srv-1" for m in rpc_server.received), t
        )
        (pong,) = [m for m in rpc_server.received if m.get("id") == "srv-1"]
        assert pong == {"jsonrpc": "2.0", "id": "srv-1", "result": "pong"}


async def test_jsonrpc_wrong_token_is_terminal(rpc_server: RpcServer, t: float) -> None:
    rpc_server.key = "right"
    handler = JsonRpcHandler(JsonRpcSpec(auth_method="login", auth_params={"token": "wrong"}))
    async with connection(rpc_server.url, handler, Updates()) as conn:
        with pytest.raises(AuthError):
            await conn.wait_ready(t)
