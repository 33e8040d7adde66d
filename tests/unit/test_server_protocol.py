"""The server side of the Massive protocol, driven with raw client actions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from massivekit.config import Market
from massivekit.protocol.server import (
    MAX_ACTION_BYTES,
    AuthDenial,
    Authenticated,
    AuthGrant,
    AuthRejected,
    BadAction,
    CloseConnection,
    DropConnection,
    ServerEvent,
    ServerProtocol,
    ServerState,
    TopicsAdded,
    TopicsIgnored,
    TopicsRefused,
    TopicsRemoved,
)
from massivekit.protocol.status import (
    CLOSE_POLICY_VIOLATION,
    DISCONNECT_STATUSES,
    MSG_AUTH_FAILED,
    MSG_FORCE_DISCONNECT,
    MSG_MAX_CONNECTIONS,
    MSG_SLOW_CONSUMER,
    SUBSCRIBED_PREFIX,
    UNSUBSCRIBED_PREFIX,
    Status,
    StatusMessage,
    ack_message,
    status_frame,
    unack_message,
)
from massivekit.protocol.topics import MAX_OPTION_CONTRACTS, TopicProblem

KEY = "good-key"
CONNECTED = b'[{"ev":"status","status":"connected","message":"Connected Successfully"}]'
AUTH_SUCCESS = b'[{"ev":"status","status":"auth_success","message":"authenticated"}]'
AUTH_FAILED = b'[{"ev":"status","status":"auth_failed","message":"authentication failed"}]'
AUTH_REQUIRED = b'[{"ev":"status","status":"auth_required","message":"authentication required"}]'
NOT_AUTHORIZED = {"ev": "status", "status": "error", "message": "not authorized"}


class Keys:
    """An authenticator that records its calls; refuses topics containing ``deny``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Market]] = []

    def __call__(self, key: str, market: Market) -> AuthGrant | AuthDenial:
        self.calls.append((key, market))
        if key != KEY:
            return AuthDenial()
        return AuthGrant("user-1", permits=lambda topic: "deny" not in topic)


def action(name: str, params: str | None = None) -> bytes:
    body: dict[str, str] = {"action": name}
    if params is not None:
        body["params"] = params
    return json.dumps(body).encode()


def events_of(frames: list[bytes]) -> list[dict[str, Any]]:
    """Every event of ``frames``, in order; each frame must be a JSON array."""
    out: list[dict[str, Any]] = []
    for frame in frames:
        decoded = json.loads(frame)
        assert isinstance(decoded, list)
        out.extend(decoded)
    return out


def messages(frames: list[bytes]) -> list[tuple[str, str]]:
    return [(e["status"], e["message"]) for e in events_of(frames)]


def new_server(market: Market = Market.STOCKS, **kwargs: Any) -> ServerProtocol:
    return ServerProtocol(market, Keys(), **kwargs)


def ready_server(market: Market = Market.STOCKS, **kwargs: Any) -> ServerProtocol:
    server = new_server(market, **kwargs)
    server.receive(action("auth", KEY))
    server.data_to_send()
    assert server.state is ServerState.READY
    return server


# -- status frames -----------------------------------------------------------


def test_status_frame_bytes() -> None:
    assert status_frame((Status.CONNECTED, "Connected Successfully")) == CONNECTED
    assert status_frame(("success", "a"), ("error", "b")) == (
        b'[{"ev":"status","status":"success","message":"a"},'
        b'{"ev":"status","status":"error","message":"b"}]'
    )
    assert status_frame() == b"[]"


def test_status_message_struct() -> None:
    assert StatusMessage("x") == StatusMessage(status="x", message="")


def test_ack_messages() -> None:
    assert ack_message("T.AAPL") == "subscribed to: T.AAPL"
    assert unack_message("T.AAPL") == "unsubscribed to: T.AAPL"
    assert SUBSCRIBED_PREFIX == "subscribed to: "
    assert UNSUBSCRIBED_PREFIX == "unsubscribed to: "


def test_disconnect_statuses() -> None:
    assert {
        Status.MAX_CONNECTIONS,
        Status.FORCE_DISCONNECT,
        Status.SLOW_CONSUMER,
    } == DISCONNECT_STATUSES
    assert CLOSE_POLICY_VIOLATION == 1008


# -- connect and authenticate -------------------------------------------------


def test_greets_with_connected() -> None:
    server = new_server()
    assert server.state is ServerState.AUTHENTICATING
    assert server.principal is None
    assert server.data_to_send() == [CONNECTED]
    assert server.data_to_send() == []


@pytest.mark.parametrize("encode", [bytes, bytes.decode], ids=["binary", "text"])
def test_good_key(encode: Any) -> None:
    keys = Keys()
    server = ServerProtocol(Market.CRYPTO, keys)
    server.data_to_send()
    assert server.receive(encode(action("auth", KEY))) == [Authenticated("user-1")]
    assert server.data_to_send() == [AUTH_SUCCESS]
    assert server.state is ServerState.READY
    assert server.principal == "user-1"
    assert keys.calls == [(KEY, Market.CRYPTO)]


def test_bad_key_is_dropped_without_close_frame() -> None:
    server = new_server()
    server.data_to_send()
    events = server.receive(action("auth", "wrong"))
    assert events == [AuthRejected(MSG_AUTH_FAILED), DropConnection(Status.AUTH_FAILED)]
    assert not any(isinstance(e, CloseConnection) for e in events)
    assert server.data_to_send() == [AUTH_FAILED]
    assert server.state is ServerState.CLOSED
    assert server.principal is None
    # A dropped session answers nothing more.
    assert server.receive(action("auth", KEY)) == []
    assert server.receive(action("subscribe", "T.AAPL")) == []
    assert server.receive(b"garbage") == []
    assert server.data_to_send() == []


def test_denial_with_an_upgrade_message() -> None:
    upgrade = "Your plan does not include websocket access. Visit https://massive.com/pricing"
    server = ServerProtocol(Market.OPTIONS, lambda key, market: AuthDenial(upgrade))
    server.data_to_send()
    assert server.receive(action("auth", "k")) == [
        AuthRejected(upgrade),
        DropConnection("auth_failed"),
    ]
    assert messages(server.data_to_send()) == [("auth_failed", upgrade)]


def test_auth_without_params_asks_about_an_empty_key() -> None:
    keys = Keys()
    server = ServerProtocol(Market.STOCKS, keys)
    server.receive(action("auth"))
    assert keys.calls == [("", Market.STOCKS)]
    assert server.state is ServerState.CLOSED


def test_second_auth_is_an_error() -> None:
    server = ready_server()
    assert server.receive(action("auth", KEY)) == [BadAction("already authenticated")]
    assert messages(server.data_to_send()) == [("error", "already authenticated")]
    assert server.state is ServerState.READY


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe"])
def test_action_before_auth_is_auth_required(name: str) -> None:
    server = new_server()
    server.data_to_send()
    assert server.receive(action(name, "T.AAPL")) == [BadAction(f"{name} before auth")]
    assert server.data_to_send() == [AUTH_REQUIRED]
    assert server.state is ServerState.AUTHENTICATING
    assert server.topics == frozenset()
    # The session can still authenticate afterwards.
    assert server.receive(action("auth", KEY)) == [Authenticated("user-1")]


def test_grant_without_permits_allows_every_topic() -> None:
    server = ServerProtocol(Market.STOCKS, lambda key, market: AuthGrant("anyone"))
    server.receive(action("auth", "x"))
    server.data_to_send()
    assert server.receive(action("subscribe", "T.deny")) == [TopicsAdded(("T.deny",))]


# -- subscribe ----------------------------------------------------------------


def test_subscribe_acks_each_topic_in_one_frame() -> None:
    server = ready_server()
    events = server.receive(action("subscribe", "T.AAPL,Q.*,AM.MSFT"))
    assert events == [TopicsAdded(("T.AAPL", "Q.*", "AM.MSFT"))]
    assert server.data_to_send() == [
        b'[{"ev":"status","status":"success","message":"subscribed to: T.AAPL"},'
        b'{"ev":"status","status":"success","message":"subscribed to: Q.*"},'
        b'{"ev":"status","status":"success","message":"subscribed to: AM.MSFT"}]'
    ]
    assert server.topics == {"T.AAPL", "Q.*", "AM.MSFT"}


def test_single_ack_exact_frame() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.AAPL"))
    assert server.data_to_send() == [
        b'[{"ev":"status","status":"success","message":"subscribed to: T.AAPL"}]'
    ]


@pytest.mark.parametrize("encode", [bytes, bytes.decode], ids=["binary", "text"])
def test_spaces_after_commas_are_trimmed(encode: Any) -> None:
    server = ready_server()
    events = server.receive(encode(action("subscribe", "T.AAPL, Q.*,  AM.MSFT ,")))
    assert events == [TopicsAdded(("T.AAPL", "Q.*", "AM.MSFT"))]


@pytest.mark.parametrize(
    "params",
    [
        "XT.BTC-USD",  # unknown prefix on stocks
        "BOGUS.AAPL",
        "TAAPL",  # malformed
        "T.",
        ".AAPL",
    ],
)
def test_unknown_or_malformed_topic_gets_no_answer(params: str) -> None:
    server = ready_server()
    assert server.receive(action("subscribe", params)) == [TopicsIgnored((params,))]
    assert server.data_to_send() == []
    assert server.topics == frozenset()


def test_repeated_subscription_gets_no_answer() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.AAPL"))
    server.data_to_send()
    assert server.receive(action("subscribe", "T.AAPL")) == [TopicsIgnored(("T.AAPL",))]
    assert server.data_to_send() == []


def test_repeat_within_one_action_is_answered_once() -> None:
    server = ready_server()
    events = server.receive(action("subscribe", "T.AAPL,T.AAPL"))
    assert events == [TopicsAdded(("T.AAPL",)), TopicsIgnored(("T.AAPL",))]
    assert messages(server.data_to_send()) == [("success", "subscribed to: T.AAPL")]


def test_subscribe_with_nothing_answers_nothing() -> None:
    server = ready_server()
    assert server.receive(action("subscribe", " , ")) == []
    assert server.receive(action("subscribe")) == []
    assert server.data_to_send() == []


def test_refusal_names_no_topic() -> None:
    server = ready_server()
    events = server.receive(action("subscribe", "T.deny1"))
    assert events == [TopicsRefused(("T.deny1",), "not authorized")]
    assert server.data_to_send() == [
        b'[{"ev":"status","status":"error","message":"not authorized"}]'
    ]
    assert server.topics == frozenset()


def test_mixed_answers() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.MSFT"))
    server.data_to_send()
    events = server.receive(action("subscribe", "T.AAPL,T.deny1,XT.X,T.MSFT,Q.deny2,AM.AAPL"))
    assert events == [
        TopicsAdded(("T.AAPL", "AM.AAPL")),
        TopicsIgnored(("XT.X", "T.MSFT")),
        TopicsRefused(("T.deny1", "Q.deny2"), "not authorized"),
    ]
    # Refusals name no topic: the answers go in topic order, in one frame, so
    # a client can pair each error with its unacked topics by position.
    frames = server.data_to_send()
    assert len(frames) == 1
    assert events_of(frames) == [
        {"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"},
        NOT_AUTHORIZED,
        NOT_AUTHORIZED,
        {"ev": "status", "status": "success", "message": "subscribed to: AM.AAPL"},
    ]
    assert server.topics == {"T.MSFT", "T.AAPL", "AM.AAPL"}


def test_refusals_of_different_kinds_keep_topic_order() -> None:
    """Regression: refusals were grouped by message after the acks."""
    server = ready_server(Market.OPTIONS)
    server.receive(action("subscribe", ",".join(contracts(MAX_OPTION_CONTRACTS))))
    server.data_to_send()
    cap = "at most 1000 contracts per connection"
    wildcard = f"{TopicProblem.WILDCARD_NOT_ALLOWED.value}: FMV.*"
    events = server.receive(action("subscribe", "T.deny1,FMV.O:X,T.O:A,FMV.*,Q.deny2,Q.O:Y"))
    assert events == [
        TopicsAdded(("T.O:A",)),
        TopicsRefused(("T.deny1", "Q.deny2"), "not authorized"),
        TopicsRefused(("FMV.O:X", "Q.O:Y"), cap),
        TopicsRefused(("FMV.*",), wildcard),
    ]
    frames = server.data_to_send()
    assert len(frames) == 1
    assert messages(frames) == [
        ("error", "not authorized"),
        ("error", cap),
        ("success", "subscribed to: T.O:A"),
        ("error", wildcard),
        ("error", "not authorized"),
        ("error", cap),
    ]


@pytest.mark.parametrize("topic", ["Q.*", "FMV.*"])
def test_options_wildcard_on_explicit_only_prefix_is_refused(topic: str) -> None:
    server = ready_server(Market.OPTIONS)
    message = f"{TopicProblem.WILDCARD_NOT_ALLOWED.value}: {topic}"
    assert server.receive(action("subscribe", topic)) == [TopicsRefused((topic,), message)]
    assert messages(server.data_to_send()) == [("error", message)]
    assert server.topics == frozenset()
    assert not server.wants(topic.split(".")[0], "O:SPY241220P00720000")


def test_options_wildcard_on_other_prefixes_is_fine() -> None:
    server = ready_server(Market.OPTIONS)
    assert server.receive(action("subscribe", "T.*,AM.*")) == [TopicsAdded(("T.*", "AM.*"))]


def contracts(n: int, start: int = 0, prefix: str = "Q") -> list[str]:
    return [f"{prefix}.O:SPY2412{i:08d}" for i in range(start, start + n)]


def test_the_1001st_options_contract_is_refused() -> None:
    server = ready_server(Market.OPTIONS)
    first = contracts(MAX_OPTION_CONTRACTS)
    assert server.receive(action("subscribe", ",".join(first))) == [TopicsAdded(tuple(first))]
    server.data_to_send()
    extra = contracts(1, start=MAX_OPTION_CONTRACTS)
    cap = "at most 1000 contracts per connection"
    assert server.receive(action("subscribe", extra[0])) == [TopicsRefused(tuple(extra), cap)]
    assert messages(server.data_to_send()) == [("error", cap)]
    # Non-explicit prefixes and a repeat are not capped (a repeat is silent).
    assert server.receive(action("subscribe", f"T.*,AM.O:X,{first[0]}")) == [
        TopicsAdded(("T.*", "AM.O:X")),
        TopicsIgnored((first[0],)),
    ]
    server.data_to_send()
    # Giving one contract back makes room for one more.
    assert server.receive(action("unsubscribe", first[0])) == [TopicsRemoved((first[0],))]
    assert server.receive(action("subscribe", extra[0])) == [TopicsAdded(tuple(extra))]


def test_cap_applies_within_one_action() -> None:
    server = ready_server(Market.OPTIONS)
    topics = contracts(MAX_OPTION_CONTRACTS + 2)
    events = server.receive(action("subscribe", ",".join(topics)))
    cap = "at most 1000 contracts per connection"
    assert events == [
        TopicsAdded(tuple(topics[:MAX_OPTION_CONTRACTS])),
        TopicsRefused(tuple(topics[MAX_OPTION_CONTRACTS:]), cap),
    ]
    answers = messages(server.data_to_send())
    assert answers.count(("error", cap)) == 2
    assert len(answers) == MAX_OPTION_CONTRACTS + 2


def test_cap_counts_quotes_and_fmv_together() -> None:
    """Current behaviour: Q and FMV contracts share one 1,000 budget per connection."""
    server = ready_server(Market.OPTIONS)
    server.receive(action("subscribe", ",".join(contracts(MAX_OPTION_CONTRACTS))))
    fmv = contracts(1, prefix="FMV")
    assert server.receive(action("subscribe", fmv[0])) == [
        TopicsRefused(tuple(fmv), "at most 1000 contracts per connection")
    ]


def test_no_cap_on_stocks_quotes() -> None:
    server = ready_server(Market.STOCKS)
    topics = [f"Q.S{i}" for i in range(MAX_OPTION_CONTRACTS + 1)]
    assert server.receive(action("subscribe", ",".join(topics))) == [TopicsAdded(tuple(topics))]


# -- unsubscribe --------------------------------------------------------------


def test_unsubscribe_acks_each_topic() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.AAPL,T.*,AM.MSFT"))
    server.data_to_send()
    assert server.receive(action("unsubscribe", "T.AAPL, T.*")) == [
        TopicsRemoved(("T.AAPL", "T.*"))
    ]
    assert server.data_to_send() == [
        b'[{"ev":"status","status":"success","message":"unsubscribed to: T.AAPL"},'
        b'{"ev":"status","status":"success","message":"unsubscribed to: T.*"}]'
    ]
    assert server.topics == {"AM.MSFT"}
    assert not server.wants("T", "AAPL")


def test_unsubscribe_of_what_is_not_held_is_silent() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.AAPL"))
    server.data_to_send()
    assert server.receive(action("unsubscribe", "T.MSFT,XT.X,garbage")) == []
    assert server.data_to_send() == []
    assert server.receive(action("unsubscribe", "T.AAPL,T.AAPL")) == [TopicsRemoved(("T.AAPL",))]
    assert messages(server.data_to_send()) == [("success", "unsubscribed to: T.AAPL")]


def test_revoke_takes_back_acked_topics_and_names_them() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.AAPL,Q.*,AM.MSFT"))
    server.data_to_send()
    refused = {"T.AAPL": "not authorized", "Q.*": "not authorized", "T.NOPE": "x"}
    assert server.revoke(refused) == [TopicsRemoved(("T.AAPL", "Q.*"))]
    assert messages(server.data_to_send()) == [
        ("error", "upstream refused T.AAPL: not authorized"),
        ("error", "upstream refused Q.*: not authorized"),
    ]
    assert server.topics == {"AM.MSFT"}
    assert not server.wants("Q", "MSFT")
    assert server.revoke({"T.AAPL": "again"}) == []
    assert server.data_to_send() == []
    server.receive(action("subscribe", "T.AAPL"))  # asking again is answered
    assert messages(server.data_to_send()) == [("success", "subscribed to: T.AAPL")]


def test_unsubscribe_then_resubscribe_is_acked_again() -> None:
    server = ready_server()
    server.receive(action("subscribe", "T.AAPL"))
    server.receive(action("unsubscribe", "T.AAPL"))
    server.data_to_send()
    assert server.receive(action("subscribe", "T.AAPL")) == [TopicsAdded(("T.AAPL",))]


# -- routing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "ev", "instrument", "wanted"),
    [
        ("T.*", "T", "AAPL", True),
        ("T.*", "T", None, True),
        ("T.*", "Q", "AAPL", False),
        ("T.AAPL", "T", "AAPL", True),
        ("T.AAPL", "T", "MSFT", False),
        ("T.AAPL", "T", None, False),
        # PROTOCOL.md: A.* does not cover AM.AAPL.
        ("A.*", "AM", "AAPL", False),
        ("A.*", "A", "AAPL", True),
        ("AM.*", "A", "AAPL", False),
        ("AM.AAPL", "AM", "AAPL", True),
        ("AM.AAPL", "A", "AAPL", False),
        ("T.BRK.A", "T", "BRK.A", True),
    ],
)
def test_wants(held: str, ev: str, instrument: str | None, wanted: bool) -> None:
    server = ready_server()
    server.receive(action("subscribe", held))
    assert server.wants(ev, instrument) is wanted


def test_wants_nothing_before_subscribing() -> None:
    assert not new_server().wants("T", "AAPL")
    assert not new_server().wants("T", None)


@pytest.mark.parametrize("held", ["T.None", "T.AAPL"])
def test_an_event_without_instrument_needs_the_wildcard(held: str) -> None:
    """Regression: ``wants("T", None)`` looked up the topic ``T.None``."""
    server = ready_server()
    server.receive(action("subscribe", held))
    assert not server.wants("T", None)
    server.receive(action("subscribe", "T.*"))
    assert server.wants("T", None)


# -- bad input never crashes ---------------------------------------------------

INVALID = 'invalid message: expected {"action": ..., "params": ...}'


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "",
        b"garbage",
        "{",
        "null",
        "[]",
        "42",
        '"auth"',
        b"\xff\xfe\x00",
        b'{"action":"sub\xffscribe","params":"T.AAPL"}',
        '{"params":"T.AAPL"}',
        '{"action":5}',
        '{"action":null}',
        '{"action":"subscribe","params":["T.AAPL"]}',
        '{"action":"subscribe","params":null}',
        "[" * 20_000 + "]" * 20_000,
        '{"action":"subscribe","params":"T.AAPL"} trailing',
    ],
)
@pytest.mark.parametrize("ready", [False, True], ids=["before-auth", "after-auth"])
def test_garbage_is_answered_with_an_error(data: str | bytes, ready: bool) -> None:
    server = ready_server() if ready else new_server()
    server.data_to_send()
    state = server.state
    assert server.receive(data) == [BadAction(INVALID)]
    assert messages(server.data_to_send()) == [("error", INVALID)]
    assert server.state is state


def test_unknown_fields_are_ignored() -> None:
    server = ready_server()
    data = b'{"action":"subscribe","params":"T.AAPL","extra":{"a":[1]}}'
    assert server.receive(data) == [TopicsAdded(("T.AAPL",))]


@pytest.mark.parametrize(
    ("name", "shown"),
    [("ping", "'ping'"), ("x" * 100, repr("x" * 40)), ("", "''"), ("Subscribe", "'Subscribe'")],
)
def test_unknown_action_is_an_error(name: str, shown: str) -> None:
    server = new_server()
    server.data_to_send()
    reason = f"unknown action {shown}"
    assert server.receive(action(name, "T.AAPL")) == [BadAction(reason)]
    assert messages(server.data_to_send()) == [("error", reason)]
    assert server.state is ServerState.AUTHENTICATING


def test_oversize_action_is_refused() -> None:
    server = ready_server(max_action_bytes=64)
    data = action("subscribe", "T." + "A" * 64)
    reason = f"message of {len(data)} bytes exceeds 64"
    assert server.receive(data) == [BadAction(reason)]
    assert messages(server.data_to_send()) == [("error", reason)]
    assert server.topics == frozenset()


def test_action_exactly_at_the_limit_is_accepted() -> None:
    data = action("subscribe", "T.AAPL")
    server = ready_server(max_action_bytes=len(data))
    assert server.receive(data) == [TopicsAdded(("T.AAPL",))]


def test_default_limit() -> None:
    assert MAX_ACTION_BYTES == 64 * 1024
    server = ready_server()
    topics = ",".join(f"T.S{i:06d}" for i in range(MAX_ACTION_BYTES // 9))
    events = server.receive(action("subscribe", topics))
    assert len(events) == 1
    assert isinstance(events[0], BadAction)
    assert "exceeds 65536" in events[0].reason


@pytest.mark.parametrize(
    "data",
    ['"\ud800"', '{"action":"subscribe","params":"T.\ud800"}', '{"action":"auth\udfff"}'],
    ids=["bare", "in-params", "in-action"],
)
@pytest.mark.parametrize("ready", [False, True], ids=["before-auth", "after-auth"])
def test_text_with_lone_surrogate_does_not_crash(data: str, ready: bool) -> None:
    """Regression: a lone surrogate raised UnicodeEncodeError out of receive()."""
    server = ready_server() if ready else new_server()
    server.data_to_send()
    state = server.state
    assert server.receive(data) == [BadAction(INVALID)]
    assert messages(server.data_to_send()) == [("error", INVALID)]
    assert server.state is state
    assert server.topics == frozenset()


def test_the_size_limit_counts_utf8_bytes_of_text() -> None:
    """Regression: a text action was measured in characters, not bytes."""
    data = action("subscribe", "T.A").decode().replace("T.A", "T.\u00e9\u00e9")
    assert len(data) < len(data.encode())
    at_limit = ready_server(max_action_bytes=len(data.encode()))
    assert at_limit.receive(data) == [TopicsAdded(("T.\u00e9\u00e9",))]
    server = ready_server(max_action_bytes=len(data))
    reason = f"message of {len(data.encode())} bytes exceeds {len(data)}"
    assert server.receive(data) == [BadAction(reason)]
    assert messages(server.data_to_send()) == [("error", reason)]
    assert server.topics == frozenset()


def test_the_size_of_text_with_a_lone_surrogate_is_still_measured() -> None:
    data = '{"action":"subscribe","params":"T.\ud800' + "A" * 64 + '"}'
    server = ready_server(max_action_bytes=64)
    (event,) = server.receive(data)
    assert isinstance(event, BadAction)
    assert event.reason.startswith("message of ")
    assert event.reason.endswith(" bytes exceeds 64")


# -- timeouts and disconnects ---------------------------------------------------


def test_auth_timeout() -> None:
    server = new_server()
    server.data_to_send()
    assert server.auth_timed_out() == [CloseConnection(1008, "auth_timeout")]
    assert messages(server.data_to_send()) == [("auth_timeout", "authentication timed out")]
    assert server.state is ServerState.CLOSED
    # Only once, and nothing is heard afterwards.
    assert server.auth_timed_out() == []
    assert server.receive(action("auth", KEY)) == []
    assert server.data_to_send() == []


def test_auth_timer_after_auth_does_nothing() -> None:
    server = ready_server()
    assert server.auth_timed_out() == []
    assert server.data_to_send() == []
    assert server.state is ServerState.READY


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (Status.MAX_CONNECTIONS, MSG_MAX_CONNECTIONS, 1008),
        (Status.SLOW_CONSUMER, MSG_SLOW_CONSUMER, 1008),
        (Status.FORCE_DISCONNECT, MSG_FORCE_DISCONNECT, 1000),
    ],
)
@pytest.mark.parametrize("ready", [False, True], ids=["before-auth", "after-auth"])
def test_disconnect(status: Status, message: str, code: int, ready: bool) -> None:
    server = ready_server() if ready else new_server()
    server.data_to_send()
    assert server.disconnect(status) == [CloseConnection(code, status)]
    assert server.data_to_send() == [status_frame((status, message))]
    assert server.state is ServerState.CLOSED
    assert server.disconnect(status) == []
    assert server.receive(action("subscribe", "T.AAPL")) == []
    assert server.data_to_send() == []


def test_max_connections_closes_with_1008() -> None:
    server = ready_server()
    (event,) = server.disconnect(Status.MAX_CONNECTIONS)
    assert isinstance(event, CloseConnection)
    assert event.code == 1008
    assert events_of(server.data_to_send()) == [
        {"ev": "status", "status": "max_connections", "message": MSG_MAX_CONNECTIONS}
    ]


def test_disconnect_with_own_message() -> None:
    server = ready_server()
    server.disconnect(Status.FORCE_DISCONNECT, "maintenance")
    assert messages(server.data_to_send()) == [("force_disconnect", "maintenance")]


@pytest.mark.parametrize("status", [Status.ERROR, Status.AUTH_TIMEOUT, Status.SUCCESS])
def test_disconnect_needs_a_disconnect_status(status: Status) -> None:
    server = ready_server()
    with pytest.raises(ValueError, match="not a disconnect status"):
        server.disconnect(status)
    assert server.state is ServerState.READY


def test_frames_queue_in_order() -> None:
    server = new_server()
    server.receive(action("subscribe", "T.AAPL"))
    server.receive(action("auth", KEY))
    server.receive(action("subscribe", "T.AAPL"))
    assert [e["status"] for e in events_of(server.data_to_send())] == [
        "connected",
        "auth_required",
        "auth_success",
        "success",
    ]


def test_event_types_share_a_base() -> None:
    for event in (
        Authenticated("p"),
        AuthRejected("m"),
        TopicsAdded(()),
        TopicsRemoved(()),
        TopicsIgnored(()),
        TopicsRefused((), "m"),
        BadAction("r"),
        DropConnection("r"),
        CloseConnection(1000, "r"),
    ):
        assert isinstance(event, ServerEvent)


def test_wants_topic_matches_exact_and_wildcard_holdings() -> None:
    from massivekit.config import Market
    from massivekit.protocol.server import AuthGrant, ServerProtocol

    server = ServerProtocol(Market.STOCKS, lambda key, market: AuthGrant("p"))
    server.receive(b'{"action":"auth","params":"k"}')
    server.receive(b'{"action":"subscribe","params":"T.*,Q.AAPL"}')
    assert server.wants_topic("T.MSFT")
    assert server.wants_topic("Q.AAPL")
    assert not server.wants_topic("Q.MSFT")
    assert not server.wants_topic("TX.MSFT")


def test_holds_wildcards() -> None:
    from massivekit.config import Market
    from massivekit.protocol.server import AuthGrant, ServerProtocol

    server = ServerProtocol(Market.STOCKS, lambda key, market: AuthGrant("p"))
    server.receive(b'{"action":"auth","params":"k"}')
    server.receive(b'{"action":"subscribe","params":"T.*,Q.*,A.AAPL"}')
    assert server.holds_wildcards({"T", "Q"})
    assert not server.holds_wildcards({"T", "Q", "A"})
