"""Protocol sessions without I/O: Massive (on ClientProtocol), generic JSON, JSON-RPC."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.errors import ProtocolError
from massivekit.transport.handler import (
    AuthRejected,
    Disconnect,
    MessageKind,
    Ping,
    Pong,
    Ready,
    Reconnect,
    Response,
    SubscriptionResult,
    System,
    Unknown,
    Update,
)
from massivekit.transport.handlers.generic_json import GenericJsonHandler, JsonSpec
from massivekit.transport.handlers.jsonrpc import AUTH_ID, JsonRpcHandler, JsonRpcSpec
from massivekit.transport.handlers.massive import MassiveHandler, MassiveSession
from massivekit.transport.session import JsonSession

KEY = "unit-handler-key"


def status(*pairs: tuple[str, str]) -> bytes:
    return json.dumps([{"ev": "status", "status": s, "message": m} for s, m in pairs]).encode()


def sent(session: Any) -> list[dict[str, Any]]:
    return [json.loads(m) for m in session.data_to_send()]


# -- Massive ------------------------------------------------------------------------------


def ready_massive(market: Market = Market.STOCKS) -> MassiveSession:
    session = MassiveHandler(ApiKey(KEY), market).open_session()
    assert session.on_open() == []
    assert session.receive(status(("connected", "Connected Successfully")), False) == [
        System("connected", "Connected Successfully")
    ]
    assert sent(session) == [{"action": "auth", "params": KEY}]
    assert session.receive(status(("auth_success", "authenticated")), False) == [
        Ready("authenticated")
    ]
    return session


def test_massive_fast_path_matches_the_protocol() -> None:
    session = ready_massive()
    data = b'[{"ev":"T","sym":"AAPL","p":1}]'
    assert session.is_plain_update(data, False)
    assert session.is_plain_update(data.decode(), False)
    assert session.receive(data, False) == [Update(data)]
    assert not session.is_plain_update(status(("success", "subscribed to: T.A")), False)
    assert not session.is_plain_update(b'[ { "ev" : "status" , "status":"x"}]', False)
    assert not session.is_plain_update('[{"ev":"status"}]', False)
    # Not an array: passed on, to fail (and be counted) in the frame decoder.
    assert session.is_plain_update(b'{"ev":"T"}', False)
    mixed = b'[{"ev":"T","sym":"A"},{"ev":"status","status":"error","message":"x"}]'
    out = session.receive(mixed, False)
    assert Update(b'[{"ev":"T","sym":"A"}]') in out


def test_massive_acks_refusals_and_local_answers() -> None:
    session = ready_massive()
    assert session.subscribe(["T.AAPL", "Q.AAPL", "ZZ.AAPL"]) == []
    assert sent(session) == [{"action": "subscribe", "params": "T.AAPL,Q.AAPL"}]
    out = session.receive(
        status(("success", "subscribed to: T.AAPL"), ("error", "not authorized")), False
    )
    (result,) = out
    assert isinstance(result, SubscriptionResult)
    assert result.op == "subscribe"
    assert result.acked == ("T.AAPL",)
    assert result.refused["Q.AAPL"] == "not authorized"
    assert "ZZ.AAPL" in result.refused, "unknown prefix refused locally: the server is silent"
    # Already held on this connection: settled at once, nothing sent.
    (again,) = session.subscribe(["T.AAPL"])
    assert isinstance(again, SubscriptionResult)
    assert again.acked == ("T.AAPL",)
    assert session.data_to_send() == []
    (gone,) = session.unsubscribe(["T.MSFT"])
    assert isinstance(gone, SubscriptionResult)
    assert gone.op == "unsubscribe"


def test_massive_expiry_and_connection_loss() -> None:
    session = ready_massive()
    session.subscribe(["T.A", "T.B"])
    session.data_to_send()
    session.receive(status(("success", "subscribed to: T.A")), False)
    (expired,) = session.expire_subscriptions()
    assert isinstance(expired, SubscriptionResult)
    assert expired.unanswered == ("T.B",)
    session.subscribe(["T.C"])
    (lost,) = session.connection_lost()
    assert isinstance(lost, SubscriptionResult)
    assert lost.unanswered == ("T.C",)


@pytest.mark.parametrize(
    ("name", "reconnect"),
    [
        ("max_connections", Reconnect.LATER),
        ("force_disconnect", Reconnect.BACKOFF),
        ("slow_consumer", Reconnect.BACKOFF),
    ],
)
def test_massive_disconnect_statuses(name: str, reconnect: Reconnect) -> None:
    session = ready_massive()
    (notice,) = session.receive(status((name, "bye")), False)
    assert notice == Disconnect(name, "bye", reconnect)
    assert notice.kind is MessageKind.CONTROL


def test_massive_auth_failure_timeout_and_garbage() -> None:
    session = MassiveHandler(ApiKey(KEY), Market.STOCKS).open_session()
    session.receive(status(("connected", "hi")), False)
    assert session.receive(status(("auth_failed", "authentication failed")), False) == [
        AuthRejected("authentication failed")
    ]
    other = MassiveHandler(ApiKey(KEY), Market.STOCKS).open_session()
    other.receive(status(("connected", "hi")), False)
    (notice,) = other.receive(status(("auth_timeout", "too slow")), False)
    assert isinstance(notice, Disconnect)
    assert notice.reason == "auth_timeout"
    (bad,) = other.receive(b"{not json", False)
    assert isinstance(bad, Unknown)
    assert bad.kind is MessageKind.UNKNOWN
    with pytest.raises(ProtocolError):
        other.request("anything", None)
    assert not other.ping(), "Massive relies on WebSocket pings"
    assert "MassiveHandler" in repr(MassiveHandler(ApiKey(KEY), Market.STOCKS))
    assert "MassiveSession" in repr(other)


# -- generic JSON ---------------------------------------------------------------------------


def generic(**spec: Any) -> JsonSession:
    session = GenericJsonHandler(JsonSpec(**spec)).open_session()
    assert isinstance(session, JsonSession)
    return session


def test_generic_without_auth_is_ready_at_once() -> None:
    session = generic()
    assert session.on_open() == [Ready()]
    assert session.data_to_send() == []


def test_generic_auth_success_and_failure() -> None:
    session = generic(auth={"op": "auth", "key": "secret"})
    assert session.on_open() == []
    assert sent(session) == [{"op": "auth", "key": "secret"}]
    assert session.receive(b'{"op":"auth","success":true}', False) == [Ready()]
    refused = generic(auth={"op": "auth"})
    refused.on_open()
    (out,) = refused.receive(b'{"op":"auth","error":"bad key"}', False)
    assert isinstance(out, AuthRejected)


def test_generic_subscribe_is_settled_by_its_id() -> None:
    session = generic()
    session.on_open()
    assert session.subscribe(["trades.BTC", "book.ETH"]) == []
    (message,) = sent(session)
    assert message == {"op": "subscribe", "args": ["trades.BTC", "book.ETH"], "id": 1}
    assert session.outstanding == 1
    assert session.receive(b'{"id":1,"success":true}', False) == [
        SubscriptionResult("subscribe", acked=("trades.BTC", "book.ETH"))
    ]
    session.unsubscribe(["book.ETH"])
    assert sent(session)[0]["op"] == "unsubscribe"
    (refused,) = session.receive(b'{"id":2,"error":"no such topic"}', False)
    assert isinstance(refused, SubscriptionResult)
    assert refused.refused == {"book.ETH": "no such topic"}
    assert session.subscribe([]) == []


def test_generic_updates_requests_and_control() -> None:
    session = generic(data="data")
    session.on_open()
    assert session.receive(b'{"topic":"trades.BTC","data":{"p":1}}', False) == [
        Update({"p": 1}, "trades.BTC")
    ]
    request_id = session.request("time", {"tz": "UTC"})
    assert sent(session) == [{"op": "time", "id": request_id, "params": {"tz": "UTC"}}]
    assert session.receive(json.dumps({"id": request_id, "result": 5}), False) == [
        Response(request_id, 5, None)
    ]
    assert session.receive(b'{"op":"ping","id":7}', False) == [Ping()]
    assert sent(session) == [{"op": "pong", "id": 7}]
    assert session.ping()
    assert sent(session) == [{"op": "ping"}]
    assert session.receive(b'{"op":"pong"}', False) == [Pong()]
    (notice,) = session.receive(b'{"op":"reconnect","message":"maintenance"}', False)
    assert notice == Disconnect("reconnect", "maintenance", Reconnect.NOW)
    (info,) = session.receive(b'{"op":"welcome"}', False)
    assert isinstance(info, System)
    batch = session.receive(b'[{"topic":"a"},{"strange":1},3]', False)
    assert [type(x) for x in batch] == [Update, Unknown, Unknown]
    (bad,) = session.receive(b"not json", False)
    assert isinstance(bad, Unknown)


def test_generic_unacknowledged_subscriptions_and_no_ping() -> None:
    session = generic(acknowledges=False, ping_op=None, server_ping_op=None, reconnect_op=None)
    session.on_open()
    assert session.subscribe(["x"]) == [SubscriptionResult("subscribe", acked=("x",))]
    assert not session.ping()
    (out,) = session.receive(b'{"op":"ping"}', False)
    assert isinstance(out, Unknown)
    assert session.expire_subscriptions() == []


@pytest.mark.parametrize(
    ("compression", "pack"), [("zlib", zlib.compress), ("gzip", gzip.compress), (None, bytes)]
)
def test_generic_binary_frames(compression: Any, pack: Any) -> None:
    session = generic(compression=compression)
    session.on_open()
    payload = pack(b'{"topic":"t","v":1}')
    assert session.receive(payload, True) == [Update({"topic": "t", "v": 1}, "t")]


def test_generic_expiry_and_loss_settle_as_unanswered() -> None:
    session = generic()
    session.on_open()
    session.subscribe(["a"])
    assert session.expire_subscriptions() == [SubscriptionResult("subscribe", unanswered=("a",))]
    session.subscribe(["b"])
    assert session.connection_lost() == [SubscriptionResult("subscribe", unanswered=("b",))]
    assert "JsonSession" in repr(session)
    assert "GenericJsonHandler" in repr(session)


# -- JSON-RPC 2.0 -----------------------------------------------------------------------------


def rpc(**spec: Any) -> JsonSession:
    session = JsonRpcHandler(JsonRpcSpec(**spec)).open_session()
    assert isinstance(session, JsonSession)
    return session


def test_jsonrpc_auth_then_subscribe() -> None:
    session = rpc(auth_method="login", auth_params={"token": "t0k"})
    assert session.on_open() == []
    assert sent(session) == [
        {"jsonrpc": "2.0", "id": AUTH_ID, "method": "login", "params": {"token": "t0k"}}
    ]
    assert session.receive(b'{"jsonrpc":"2.0","id":"auth","result":true}', False) == [Ready()]
    session.subscribe(["ticker.BTC"])
    (message,) = sent(session)
    assert message["method"] == "subscribe"
    assert message["params"] == {"channels": ["ticker.BTC"]}
    (ok,) = session.receive(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": 1}), False)
    assert ok == SubscriptionResult("subscribe", acked=("ticker.BTC",))


def test_jsonrpc_auth_failure() -> None:
    session = rpc(auth_method="login")
    session.on_open()
    (out,) = session.receive(b'{"jsonrpc":"2.0","id":"auth","error":{"code":1}}', False)
    assert isinstance(out, AuthRejected)


def test_jsonrpc_notifications_requests_and_pings() -> None:
    session = rpc(topics_param=None, ping_method="heartbeat", reconnect_method="reconnect")
    session.on_open()
    note = b'{"jsonrpc":"2.0","method":"update","params":{"channel":"ticker.BTC","data":[1]}}'
    assert session.receive(note, False) == [Update([1], "ticker.BTC")]
    plain = b'{"jsonrpc":"2.0","method":"tick","params":[1,2]}'
    assert session.receive(plain, False) == [Update([1, 2], "tick")]
    session.subscribe(["a", "b"])
    (message,) = sent(session)
    assert message["params"] == ["a", "b"]
    error = {"jsonrpc": "2.0", "id": message["id"], "error": {"code": 5, "message": "denied"}}
    (refused,) = session.receive(json.dumps(error), False)
    assert isinstance(refused, SubscriptionResult)
    assert refused.refused == dict.fromkeys("ab", "denied")
    request_id = session.request("echo", [1])
    session.data_to_send()
    reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601}}
    assert session.receive(json.dumps(reply), False) == [
        Response(request_id, None, {"code": -32601})
    ]
    assert session.ping()
    (ping,) = sent(session)
    assert ping["method"] == "heartbeat"
    assert session.receive(
        json.dumps({"jsonrpc": "2.0", "id": ping["id"], "result": 0}), False
    ) == [Pong()]
    assert session.receive(b'{"jsonrpc":"2.0","id":"s1","method":"ping"}', False) == [Ping()]
    assert sent(session) == [{"jsonrpc": "2.0", "id": "s1", "result": "pong"}]
    (notice,) = session.receive(b'{"jsonrpc":"2.0","method":"reconnect","params":"now"}', False)
    assert notice == Disconnect("reconnect", "now", Reconnect.NOW)
    (odd,) = session.receive(b'{"jsonrpc":"2.0","id":3,"method":"serverCall"}', False)
    assert isinstance(odd, Unknown)
    assert "JsonRpcHandler" in repr(JsonRpcHandler())


def test_jsonrpc_without_ping_uses_websocket_pings() -> None:
    session = rpc()
    assert session.on_open() == [Ready()]
    assert not session.ping()
    assert session.data_to_send() == []
