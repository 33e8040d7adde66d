"""The client side of the Massive protocol, driven with raw server frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.protocol.client import (
    DEFAULT_BATCH,
    AuthFailed,
    AuthSucceeded,
    ClientEvent,
    ClientProtocol,
    ClientState,
    Connected,
    Data,
    DisconnectNotice,
    MalformedFrame,
    Request,
    RequestDone,
    StatusNotice,
)
from massivekit.protocol.topics import MAX_OPTION_CONTRACTS, TopicProblem

SECRET = "sk-unit-Zq81WmP3xV"
CONNECTED = b'[{"ev":"status","status":"connected","message":"Connected Successfully"}]'
AUTH_SUCCESS = b'[{"ev":"status","status":"auth_success","message":"authenticated"}]'
AUTH_FAILED = b'[{"ev":"status","status":"auth_failed","message":"authentication failed"}]'
TRADE = b'[{"ev":"T","sym":"AAPL","p":189.5,"s":100,"t":1700000000000}]'


def status(*pairs: tuple[str, str]) -> bytes:
    return json.dumps([{"ev": "status", "status": s, "message": m} for s, m in pairs]).encode()


def acks(*topics: str) -> bytes:
    return status(*[("success", f"subscribed to: {t}") for t in topics])


def unacks(*topics: str) -> bytes:
    return status(*[("success", f"unsubscribed to: {t}") for t in topics])


def errors(n: int = 1, message: str = "not authorized") -> bytes:
    return status(*[("error", message)] * n)


def sent(client: ClientProtocol) -> list[dict[str, Any]]:
    return [json.loads(a) for a in client.data_to_send()]


def new_client(market: Market = Market.STOCKS, **kwargs: Any) -> ClientProtocol:
    return ClientProtocol(ApiKey(SECRET), market, **kwargs)


def ready_client(market: Market = Market.STOCKS, **kwargs: Any) -> ClientProtocol:
    client = new_client(market, **kwargs)
    client.receive(CONNECTED)
    client.receive(AUTH_SUCCESS)
    client.data_to_send()
    assert client.state is ClientState.READY
    return client


def subscribed_client(*topics: str, market: Market = Market.STOCKS) -> ClientProtocol:
    client = ready_client(market)
    requests = client.subscribe(topics)
    # One frame of acks settles every batch: each finished request sends the next.
    client.receive(acks(*topics))
    client.data_to_send()
    assert all(r.ok for r in requests)
    assert client.subscribed == set(topics)
    return client


def done(events: list[ClientEvent]) -> list[Request]:
    return [e.request for e in events if isinstance(e, RequestDone)]


# -- handshake ------------------------------------------------------------------


def test_starts_connecting_and_silent() -> None:
    client = new_client()
    assert client.state is ClientState.CONNECTING
    assert client.inflight is None
    assert client.subscribed == set()
    assert client.data_to_send() == []


def test_connected_sends_the_key() -> None:
    client = new_client()
    assert client.receive(CONNECTED) == [Connected("Connected Successfully")]
    assert client.state is ClientState.AUTHENTICATING
    assert client.data_to_send() == [b'{"action":"auth","params":"sk-unit-Zq81WmP3xV"}']
    assert client.data_to_send() == []


def test_a_second_connected_does_not_authenticate_again() -> None:
    client = new_client()
    client.receive(CONNECTED)
    client.data_to_send()
    assert client.receive(CONNECTED) == [Connected("Connected Successfully")]
    assert client.data_to_send() == []
    assert client.state is ClientState.AUTHENTICATING


def test_auth_success_makes_ready() -> None:
    client = new_client()
    client.receive(CONNECTED)
    assert client.receive(AUTH_SUCCESS) == [AuthSucceeded()]
    assert client.state is ClientState.READY


def test_auth_failed_is_terminal_and_settles_requests() -> None:
    client = new_client()
    (request,) = client.subscribe(["T.AAPL"])
    client.receive(CONNECTED)
    events = client.receive(AUTH_FAILED)
    assert events == [AuthFailed("authentication failed"), RequestDone(request)]
    assert client.state is ClientState.CLOSED
    assert request.done
    assert request.unanswered == ("T.AAPL",)
    assert not request.ok
    assert client.data_to_send() == [b'{"action":"auth","params":"sk-unit-Zq81WmP3xV"}']


def test_the_key_never_shows() -> None:
    client = new_client()
    seen: list[ClientEvent] = []
    seen += client.receive(CONNECTED)
    (auth,) = client.data_to_send()
    assert SECRET in auth.decode()  # the wire is the one place it belongs
    seen += client.receive(AUTH_SUCCESS)
    requests = client.subscribe(["T.AAPL", "XT.X"])
    seen += client.receive(acks("T.AAPL"))
    seen += client.receive(status(("auth_timeout", "t"), ("max_connections", "m")))
    seen += client.receive(TRADE)
    seen += client.receive(b"status garbage")
    seen += client.receive(AUTH_FAILED)
    seen += client.close()
    shown = [repr(client), str(client), repr(vars(client)), *map(repr, seen)]
    shown += [repr(r) for r in requests]
    for text in shown:
        assert SECRET not in text
    assert repr(client) == "ClientProtocol(market=stocks, state=closed)"


# -- subscribing ------------------------------------------------------------------


def test_requests_wait_for_auth() -> None:
    client = new_client()
    (request,) = client.subscribe(["T.AAPL", "Q.*"])
    assert not request.done
    client.receive(CONNECTED)
    assert sent(client) == [{"action": "auth", "params": SECRET}]
    assert client.inflight is None
    client.receive(AUTH_SUCCESS)
    assert client.inflight is request
    assert client.data_to_send() == [b'{"action":"subscribe","params":"T.AAPL,Q.*"}']


def test_subscribe_is_settled_by_acks() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL", "AM.MSFT"])
    assert request.op == "subscribe"
    assert request.topics == ("T.AAPL", "AM.MSFT")
    assert request.pending == ("T.AAPL", "AM.MSFT")
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL,AM.MSFT"}]
    assert client.receive(acks("T.AAPL")) == []
    assert request.pending == ("AM.MSFT",)
    assert client.subscribed == {"T.AAPL"}
    assert client.receive(acks("AM.MSFT")) == [RequestDone(request)]
    assert request.done
    assert request.ok
    assert request.acked == {"T.AAPL", "AM.MSFT"}
    assert request.refused == {}
    assert request.unanswered == ()
    assert client.inflight is None
    assert client.subscribed == {"T.AAPL", "AM.MSFT"}


def test_one_request_in_flight_at_a_time() -> None:
    client = ready_client()
    (first,) = client.subscribe(["T.AAPL"])
    (second,) = client.subscribe(["T.MSFT"])
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL"}]
    assert client.inflight is first
    assert not second.done
    assert client.receive(acks("T.AAPL")) == [RequestDone(first)]
    assert sent(client) == [{"action": "subscribe", "params": "T.MSFT"}]
    assert client.inflight is second
    assert client.receive(acks("T.MSFT")) == [RequestDone(second)]
    assert client.data_to_send() == []


def test_topics_are_batched() -> None:
    client = ready_client(batch_size=2)
    requests = client.subscribe(["T.A", "T.B", "T.C", "T.B", "T.D", "T.E"])
    assert [r.topics for r in requests] == [("T.A", "T.B"), ("T.C", "T.D"), ("T.E",)]
    assert [r.id for r in requests] == [1, 2, 3]
    assert sent(client) == [{"action": "subscribe", "params": "T.A,T.B"}]
    client.receive(acks("T.A", "T.B"))
    assert sent(client) == [{"action": "subscribe", "params": "T.C,T.D"}]
    client.receive(acks("T.C", "T.D"))
    assert sent(client) == [{"action": "subscribe", "params": "T.E"}]
    client.receive(acks("T.E"))
    assert all(r.ok for r in requests)


def test_default_batch() -> None:
    assert DEFAULT_BATCH == 500
    client = ready_client()
    requests = client.subscribe([f"T.S{i}" for i in range(DEFAULT_BATCH + 1)])
    assert [len(r.topics) for r in requests] == [DEFAULT_BATCH, 1]


def test_nothing_to_subscribe() -> None:
    client = ready_client()
    assert client.subscribe([]) == []
    assert client.unsubscribe(iter([])) == []
    assert client.data_to_send() == []


@pytest.mark.parametrize("op", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize("topics", ["T.AAPL", b"T.AAPL", ""], ids=["str", "bytes", "empty"])
def test_a_single_string_is_not_a_collection(op: str, topics: str | bytes) -> None:
    """A bare string would be split into one-letter topics: refuse it."""
    client = ready_client()
    with pytest.raises(TypeError, match="collection of topics"):
        getattr(client, op)(topics)
    assert client.inflight is None
    assert client.data_to_send() == []


@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_must_be_positive(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch"):
        new_client(batch_size=batch_size)


def test_batch_size_of_one() -> None:
    client = ready_client(batch_size=1)
    requests = client.subscribe(["T.A", "T.B"])
    assert [r.topics for r in requests] == [("T.A",), ("T.B",)]


def test_refusals_go_to_the_unacked_topics_once_all_answers_are_in() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL", "T.MSFT", "T.GOOG"])
    client.data_to_send()
    assert client.receive(acks("T.AAPL")) == []
    # One refusal, but two topics still unanswered: it cannot be attributed yet.
    assert client.receive(errors(1)) == []
    assert not request.done
    assert client.receive(acks("T.GOOG")) == [RequestDone(request)]
    assert request.refused == {"T.MSFT": "not authorized"}
    assert request.acked == {"T.AAPL", "T.GOOG"}
    assert not request.ok
    assert client.subscribed == {"T.AAPL", "T.GOOG"}


def test_refusals_before_acks() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL", "T.MSFT", "T.GOOG"])
    assert client.receive(errors(2)) == []
    assert client.receive(acks("T.MSFT")) == [RequestDone(request)]
    assert request.refused == {"T.AAPL": "not authorized", "T.GOOG": "not authorized"}


def test_everything_refused_in_one_frame() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL", "T.MSFT"])
    assert client.receive(errors(2)) == [RequestDone(request)]
    assert request.refused == {"T.AAPL": "not authorized", "T.MSFT": "not authorized"}
    assert client.subscribed == set()


def test_finishing_one_request_sends_the_next_within_the_same_frame() -> None:
    client = ready_client()
    (first,) = client.subscribe(["T.AAPL"])
    (second,) = client.subscribe(["T.MSFT"])
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL"}]
    # The next request is in flight as soon as the first is done, so a later ack
    # in the same frame already counts for it (before its action is even sent).
    events = client.receive(acks("T.AAPL", "T.MSFT"))
    assert events == [RequestDone(first), RequestDone(second)]
    assert sent(client) == [{"action": "subscribe", "params": "T.MSFT"}]


@pytest.mark.parametrize(
    ("market", "topic", "problem"),
    [
        (Market.STOCKS, "XT.BTC-USD", TopicProblem.UNKNOWN_PREFIX),
        (Market.STOCKS, "BOGUS.X", TopicProblem.UNKNOWN_PREFIX),
        (Market.STOCKS, "TAAPL", TopicProblem.MALFORMED),
        (Market.STOCKS, "T.", TopicProblem.MALFORMED),
        (Market.OPTIONS, "Q.*", TopicProblem.WILDCARD_NOT_ALLOWED),
        (Market.OPTIONS, "FMV.*", TopicProblem.WILDCARD_NOT_ALLOWED),
        (Market.FOREX, "T.AAPL", TopicProblem.UNKNOWN_PREFIX),
    ],
)
def test_local_refusal_without_sending(market: Market, topic: str, problem: TopicProblem) -> None:
    client = ready_client(market)
    (request,) = client.subscribe([topic])
    assert request.done
    assert request.refused == {topic: f"{problem.value}: {topic}"}
    assert request.unanswered == ()
    assert not request.ok
    assert client.inflight is None
    assert client.data_to_send() == []


def test_local_answers_wait_until_the_request_is_sent() -> None:
    """A request queued before READY is judged only when it goes in flight."""
    client = new_client()
    (refused,) = client.subscribe(["XT.BTC-USD"])
    (unheld,) = client.unsubscribe(["T.AAPL"])
    (wanted,) = client.subscribe(["T.AAPL", "BAD"])
    for request in (refused, unheld, wanted):
        assert not request.done
        assert request.refused == {}
        assert request.acked == set()
        assert request.pending == ()
    client.receive(CONNECTED)
    assert not refused.done
    client.data_to_send()
    # The pump runs on auth_success: the local answers come out of that receive().
    assert client.receive(AUTH_SUCCESS) == [
        AuthSucceeded(),
        RequestDone(refused),
        RequestDone(unheld),
    ]
    assert refused.refused == {"XT.BTC-USD": f"{TopicProblem.UNKNOWN_PREFIX.value}: XT.BTC-USD"}
    assert unheld.ok
    assert unheld.acked == {"T.AAPL"}
    assert client.inflight is wanted
    assert wanted.refused == {"BAD": f"{TopicProblem.MALFORMED.value}: BAD"}
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL"}]


def test_a_local_answer_behind_a_request_in_flight_settles_with_its_last_answer() -> None:
    client = ready_client()
    (first,) = client.subscribe(["T.AAPL"])
    (refused,) = client.subscribe(["XT.BTC-USD"])
    (again,) = client.subscribe(["T.AAPL"])
    (third,) = client.subscribe(["T.MSFT"])
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL"}]
    assert not refused.done
    assert not again.done
    # The ack of the first settles the local ones and sends the next real request.
    assert client.receive(acks("T.AAPL")) == [
        RequestDone(first),
        RequestDone(refused),
        RequestDone(again),
    ]
    assert set(refused.refused) == {"XT.BTC-USD"}
    assert again.ok
    assert again.acked == {"T.AAPL"}
    assert client.inflight is third
    assert sent(client) == [{"action": "subscribe", "params": "T.MSFT"}]


def test_subscribing_twice_before_the_ack_asks_once() -> None:
    """Regression: the second subscribe was sent and the server never answered it."""
    client = ready_client()
    (first,) = client.subscribe(["T.AAPL"])
    (second,) = client.subscribe(["T.AAPL", "T.MSFT"])
    client.data_to_send()
    assert client.receive(acks("T.AAPL")) == [RequestDone(first)]
    assert second.acked == {"T.AAPL"}
    assert sent(client) == [{"action": "subscribe", "params": "T.MSFT"}]
    assert client.receive(acks("T.MSFT")) == [RequestDone(second)]
    assert second.ok


def test_unsubscribing_before_the_subscribe_is_acked_is_sent() -> None:
    """Regression: the unsubscribe was 'acked' locally and the server kept the topic."""
    client = ready_client()
    (subscribe,) = client.subscribe(["T.AAPL"])
    (unsubscribe,) = client.unsubscribe(["T.AAPL"])
    assert not unsubscribe.done
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL"}]
    assert client.receive(acks("T.AAPL")) == [RequestDone(subscribe)]
    assert sent(client) == [{"action": "unsubscribe", "params": "T.AAPL"}]
    assert client.receive(unacks("T.AAPL")) == [RequestDone(unsubscribe)]
    assert unsubscribe.ok
    assert client.subscribed == set()


def test_unsubscribing_after_a_refused_subscribe_is_answered_locally() -> None:
    client = ready_client()
    client.subscribe(["T.AAPL"])
    (unsubscribe,) = client.unsubscribe(["T.AAPL"])
    client.data_to_send()
    client.receive(errors(1))
    assert unsubscribe.ok
    assert client.data_to_send() == []


def test_local_refusals_and_sent_topics_in_one_request() -> None:
    client = ready_client()
    (request,) = client.subscribe(["XT.X", "T.AAPL", "BAD"])
    assert sent(client) == [{"action": "subscribe", "params": "T.AAPL"}]
    assert request.pending == ("T.AAPL",)
    assert set(request.refused) == {"XT.X", "BAD"}
    assert client.receive(acks("T.AAPL")) == [RequestDone(request)]
    assert request.acked == {"T.AAPL"}
    assert set(request.refused) == {"XT.X", "BAD"}
    assert not request.ok


def test_repeated_subscribe_is_answered_locally() -> None:
    client = subscribed_client("T.AAPL")
    (request,) = client.subscribe(["T.AAPL"])
    assert request.done
    assert request.ok
    assert request.acked == {"T.AAPL"}
    assert client.data_to_send() == []
    assert client.inflight is None


def test_option_contract_cap_is_checked_locally() -> None:
    held = [f"Q.O:SPY2412{i:08d}" for i in range(MAX_OPTION_CONTRACTS)]
    client = subscribed_client(*held, market=Market.OPTIONS)
    (request,) = client.subscribe(["Q.O:NEW", "T.O:NEW"])
    assert request.refused == {"Q.O:NEW": "at most 1000 contracts per connection"}
    assert sent(client) == [{"action": "subscribe", "params": "T.O:NEW"}]


def test_option_contract_cap_counts_quotes_and_fmv_together() -> None:
    """Regression: the cap was counted per prefix, the server counts per connection."""
    held = [f"Q.O:SPY2412{i:08d}" for i in range(MAX_OPTION_CONTRACTS)]
    client = subscribed_client(*held, market=Market.OPTIONS)
    (request,) = client.subscribe(["FMV.O:NEW"])
    assert request.done
    assert request.refused == {"FMV.O:NEW": "at most 1000 contracts per connection"}
    assert client.data_to_send() == []


def test_option_contract_cap_counts_the_topics_before_it_in_the_batch() -> None:
    held = [f"FMV.O:SPY2412{i:08d}" for i in range(MAX_OPTION_CONTRACTS - 2)]
    client = subscribed_client(*held, market=Market.OPTIONS)
    # Repeats, other prefixes and wildcards refused for their own reason take no room.
    (request,) = client.subscribe(
        [held[0], "Q.O:A", "T.O:X", "Q.*", "FMV.O:B", "Q.O:C", "AM.O:Y", "FMV.O:D"]
    )
    cap = "at most 1000 contracts per connection"
    assert request.acked == {held[0]}
    assert request.refused == {
        "Q.*": f"{TopicProblem.WILDCARD_NOT_ALLOWED.value}: Q.*",
        "Q.O:C": cap,
        "FMV.O:D": cap,
    }
    assert sent(client) == [{"action": "subscribe", "params": "Q.O:A,T.O:X,FMV.O:B,AM.O:Y"}]


def test_option_contract_cap_within_one_request() -> None:
    client = ready_client(Market.OPTIONS, batch_size=2 * MAX_OPTION_CONTRACTS)
    topics = [f"Q.O:SPY2412{i:08d}" for i in range(MAX_OPTION_CONTRACTS + 2)]
    (request,) = client.subscribe(topics)
    assert request.pending == tuple(topics[:MAX_OPTION_CONTRACTS])
    assert set(request.refused) == set(topics[MAX_OPTION_CONTRACTS:])


def test_option_contract_cap_is_judged_when_the_request_is_sent() -> None:
    """Regression: a subscribe queued behind the unsubscribe making room was refused."""
    held = [f"Q.O:SPY2412{i:08d}" for i in range(MAX_OPTION_CONTRACTS)]
    client = subscribed_client(*held, market=Market.OPTIONS)
    (unsubscribe,) = client.unsubscribe([held[0]])
    (subscribe,) = client.subscribe(["FMV.O:NEW"])
    assert not subscribe.done
    assert subscribe.refused == {}
    assert sent(client) == [{"action": "unsubscribe", "params": held[0]}]
    assert client.receive(unacks(held[0])) == [RequestDone(unsubscribe)]
    assert sent(client) == [{"action": "subscribe", "params": "FMV.O:NEW"}]
    assert client.receive(acks("FMV.O:NEW")) == [RequestDone(subscribe)]
    assert subscribe.ok


# -- unsubscribing ------------------------------------------------------------------


def test_unsubscribe() -> None:
    client = subscribed_client("T.AAPL", "T.MSFT")
    (request,) = client.unsubscribe(["T.AAPL", "T.GOOG"])
    assert request.op == "unsubscribe"
    assert sent(client) == [{"action": "unsubscribe", "params": "T.AAPL"}]
    assert request.acked == {"T.GOOG"}  # not held: nothing to ask
    assert client.receive(unacks("T.AAPL")) == [RequestDone(request)]
    assert request.ok
    assert client.subscribed == {"T.MSFT"}


def test_unsubscribe_of_what_is_not_held_is_answered_locally() -> None:
    client = ready_client()
    (request,) = client.unsubscribe(["T.AAPL"])
    assert request.done
    assert request.ok
    assert client.data_to_send() == []


@pytest.mark.parametrize(
    "frame",
    [
        acks("T.AAPL"),  # the subscribe wording for an unsubscribe request
        unacks("T.MSFT"),  # a topic not asked for
        status(("success", "T.AAPL")),  # no prefix at all
    ],
)
def test_acks_that_do_not_match_are_notices(frame: bytes) -> None:
    client = subscribed_client("T.AAPL", "T.MSFT")
    client.unsubscribe(["T.AAPL"])
    (event,) = client.receive(frame)
    assert isinstance(event, StatusNotice)
    assert client.inflight is not None
    assert client.subscribed == {"T.AAPL", "T.MSFT"}


def test_a_duplicate_ack_is_a_notice() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL", "T.MSFT"])
    client.receive(acks("T.AAPL"))
    assert client.receive(acks("T.AAPL")) == [StatusNotice("success", "subscribed to: T.AAPL")]
    assert request.pending == ("T.MSFT",)


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        (("success", "subscribed to: T.AAPL"), StatusNotice("success", "subscribed to: T.AAPL")),
        (("error", "not authorized"), StatusNotice("error", "not authorized")),
        (("auth_required", "auth first"), StatusNotice("auth_required", "auth first")),
        (("auth_success", "authenticated"), StatusNotice("auth_success", "authenticated")),
        (("something_new", ""), StatusNotice("something_new", "")),
    ],
)
def test_other_statuses_without_a_request(pair: tuple[str, str], expected: ClientEvent) -> None:
    client = ready_client()
    assert client.receive(status(pair)) == [expected]
    assert client.state is ClientState.READY
    assert client.data_to_send() == []


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        (("auth_timeout", "timed out"), StatusNotice("auth_timeout", "timed out")),
        (("max_connections", "too many"), DisconnectNotice("max_connections", "too many")),
        (("force_disconnect", "bye"), DisconnectNotice("force_disconnect", "bye")),
        (("slow_consumer", "slow"), DisconnectNotice("slow_consumer", "slow")),
    ],
)
@pytest.mark.parametrize("ready", [False, True], ids=["authenticating", "ready"])
def test_ending_statuses_close_the_session(
    pair: tuple[str, str], expected: ClientEvent, ready: bool
) -> None:
    client = ready_client() if ready else new_client()
    if not ready:
        client.receive(CONNECTED)
        client.data_to_send()
    (inflight,) = client.subscribe(["T.AAPL"])
    client.data_to_send()
    assert client.receive(status(pair)) == [expected]
    assert client.state is ClientState.CLOSED
    # What was asked stays open until the I/O layer closes; nothing new is sent.
    assert not inflight.done
    (late,) = client.subscribe(["T.MSFT"])
    assert late.done
    assert late.unanswered == ("T.MSFT",)
    assert client.data_to_send() == []
    # A late auth_success does not reopen the session.
    assert client.receive(AUTH_SUCCESS) == [StatusNotice("auth_success", "authenticated")]
    assert client.state is ClientState.CLOSED
    assert client.close() == [RequestDone(inflight)]
    assert inflight.unanswered == ("T.AAPL",)


def test_auth_success_before_connected_is_a_notice() -> None:
    client = new_client()
    (request,) = client.subscribe(["T.AAPL"])
    assert client.receive(AUTH_SUCCESS) == [StatusNotice("auth_success", "authenticated")]
    assert client.state is ClientState.CONNECTING
    assert client.data_to_send() == []
    assert not request.done
    # The real handshake still works afterwards.
    client.receive(CONNECTED)
    assert client.receive(AUTH_SUCCESS) == [AuthSucceeded()]
    assert sent(client) == [
        {"action": "auth", "params": SECRET},
        {"action": "subscribe", "params": "T.AAPL"},
    ]


def test_status_without_message() -> None:
    client = ready_client()
    assert client.receive(b'[{"ev":"status","status":"slow_consumer"}]') == [
        DisconnectNotice("slow_consumer", "")
    ]


# -- expiry and close -------------------------------------------------------------------


def test_expire_inflight_settles_unanswered_topics() -> None:
    client = ready_client()
    (first,) = client.subscribe(["T.AAPL", "T.MSFT"])
    (second,) = client.subscribe(["T.GOOG"])
    client.data_to_send()
    client.receive(acks("T.AAPL"))
    assert client.expire_inflight() == [RequestDone(first)]
    assert first.done
    assert first.unanswered == ("T.MSFT",)
    assert first.acked == {"T.AAPL"}
    assert not first.ok
    # The next request goes out at once.
    assert client.inflight is second
    assert sent(client) == [{"action": "subscribe", "params": "T.GOOG"}]


def test_expire_pairs_the_errors_already_in_with_the_first_unacked_topics() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.A", "T.B", "T.C", "T.D"])
    client.receive(acks("T.B"))
    client.receive(errors(1, "not authorized"))
    client.receive(errors(1, "other reason"))
    assert client.expire_inflight() == [RequestDone(request)]
    assert request.acked == {"T.B"}
    assert request.refused == {"T.A": "not authorized", "T.C": "other reason"}
    assert request.unanswered == ("T.D",)
    assert client.inflight is None


def test_expire_with_nothing_in_flight() -> None:
    client = ready_client()
    assert client.expire_inflight() == []


def test_a_late_answer_after_expiry_is_a_notice() -> None:
    client = ready_client()
    client.subscribe(["T.AAPL"])
    client.expire_inflight()
    assert client.receive(acks("T.AAPL")) == [StatusNotice("success", "subscribed to: T.AAPL")]
    assert client.subscribed == set()


def test_close_settles_everything() -> None:
    client = ready_client()
    (first,) = client.subscribe(["T.AAPL", "T.MSFT"])
    (second,) = client.subscribe(["T.GOOG"])
    client.receive(acks("T.AAPL"))
    assert client.close() == [RequestDone(first), RequestDone(second)]
    assert client.state is ClientState.CLOSED
    assert client.inflight is None
    assert first.unanswered == ("T.MSFT",)
    assert second.unanswered == ("T.GOOG",)
    assert all(r.done and not r.ok for r in (first, second))
    assert client.close() == []


def test_close_before_auth_settles_the_queue() -> None:
    client = new_client()
    (request,) = client.subscribe(["T.AAPL"])
    assert client.close() == [RequestDone(request)]
    assert request.unanswered == ("T.AAPL",)


def test_close_with_nothing_pending() -> None:
    client = ready_client()
    assert client.close() == []
    assert client.state is ClientState.CLOSED


def test_close_does_not_call_a_refused_topic_unanswered() -> None:
    """Regression: a topic refused locally was also reported unanswered."""
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL", "XT.BTC-USD", "T.MSFT"])
    client.receive(acks("T.MSFT"))
    assert client.close() == [RequestDone(request)]
    assert set(request.refused) == {"XT.BTC-USD"}
    assert request.acked == {"T.MSFT"}
    assert request.unanswered == ("T.AAPL",)


def test_close_leaves_queued_requests_wholly_unanswered() -> None:
    """A request never sent was never judged: even a bad topic is unanswered."""
    client = new_client()
    (request,) = client.subscribe(["T.AAPL", "XT.BTC-USD"])
    assert client.close() == [RequestDone(request)]
    assert request.refused == {}
    assert request.unanswered == ("T.AAPL", "XT.BTC-USD")


def test_close_pairs_the_errors_already_in_like_expiry() -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.A", "T.B", "T.C"])
    client.receive(errors(1))
    client.close()
    assert request.refused == {"T.A": "not authorized"}
    assert request.unanswered == ("T.B", "T.C")


def _closed_by_close() -> ClientProtocol:
    client = ready_client()
    client.close()
    return client


def _closed_by_auth_failed() -> ClientProtocol:
    client = new_client()
    client.receive(CONNECTED)
    client.receive(AUTH_FAILED)
    return client


def _closed_by_status(name: str) -> Any:
    def make() -> ClientProtocol:
        client = ready_client()
        client.receive(status((name, "bye")))
        return client

    return make


@pytest.mark.parametrize(
    "closed",
    [
        _closed_by_close,
        _closed_by_auth_failed,
        _closed_by_status("auth_timeout"),
        _closed_by_status("max_connections"),
        _closed_by_status("force_disconnect"),
        _closed_by_status("slow_consumer"),
    ],
    ids=[
        "close",
        "auth_failed",
        "auth_timeout",
        "max_connections",
        "force_disconnect",
        "slow_consumer",
    ],
)
@pytest.mark.parametrize("op", ["subscribe", "unsubscribe"])
def test_requests_after_close_are_settled_at_once(closed: Any, op: str) -> None:
    """Regression: requests made after close were queued and never settled."""
    client = closed()
    client.data_to_send()
    assert client.state is ClientState.CLOSED
    requests = getattr(client, op)(["T.AAPL", "XT.BTC-USD", "T.B", "T.C"])
    assert all(r.done and not r.ok for r in requests)
    assert [r.unanswered for r in requests] == [r.topics for r in requests]
    assert all(r.refused == {} and r.acked == set() for r in requests)
    assert client.data_to_send() == []
    assert client.inflight is None
    # Already settled: a later close has nothing to report about them.
    assert client.close() == []


# -- frames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [TRADE, TRADE.decode(), b"[]", "[]", '[{"ev":"T","sym":"\ud800"}]'],
    ids=["bytes", "str", "[]", "str-[]", "unchecked-surrogate"],
)
def test_data_frames_are_handed_on_untouched(frame: bytes | str) -> None:
    """A frame starting with ``[`` and without ``status`` is not even parsed."""
    client = ready_client()
    (event,) = client.receive(frame)
    assert isinstance(event, Data)
    assert event.frame is frame


def test_data_frames_before_connected() -> None:
    client = new_client()
    (event,) = client.receive(TRADE)
    assert isinstance(event, Data)
    assert event.frame is TRADE


@pytest.mark.parametrize("text", [False, True], ids=["bytes", "str"])
def test_mixed_frames_are_split(text: bool) -> None:
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL"])
    frame = (
        b'[{"ev":"T","sym":"MSFT","p":1},'
        b' {"ev":"status","status":"success","message":"subscribed to: T.AAPL"},'
        b'{"ev":"Q","sym":"AAPL","bp":2}]'
    )
    events = client.receive(frame.decode() if text else frame)
    assert events == [
        RequestDone(request),
        Data(b'[{"ev":"T","sym":"MSFT","p":1},{"ev":"Q","sym":"AAPL","bp":2}]'),
    ]


def test_an_array_not_starting_with_a_bracket_is_parsed() -> None:
    client = ready_client()
    assert client.receive(b' [{"ev":"T", "p":1}]\n') == [Data(b'[{"ev":"T", "p":1}]')]
    assert client.receive(" []") == []


def test_data_mentioning_status_is_still_data() -> None:
    client = ready_client()
    frame = b'[{"ev":"T","sym":"status","p":1}]'
    assert client.receive(frame) == [Data(frame)]


def test_events_without_ev_are_data() -> None:
    client = ready_client()
    frame = b'[{"status":"success","message":"subscribed to: T.AAPL"}]'
    assert client.receive(frame) == [Data(frame)]


def test_several_statuses_in_one_frame() -> None:
    client = new_client()
    events = client.receive(
        status(("connected", "Connected Successfully"), ("auth_success", "authenticated"))
    )
    assert events == [Connected("Connected Successfully"), AuthSucceeded()]
    assert client.state is ClientState.READY


@pytest.mark.parametrize(
    ("frame", "preview"),
    [
        (b"status", "status"),
        ("status", "status"),
        (b'{"ev":"status","status":"success"}', '{"ev":"status","status":"success"}'),
        (b'[{"ev":"status","status":"x"}', '[{"ev":"status","status":"x"}'),
        (b'[{"ev":"status","status":"x"},1]', '[{"ev":"status","status":"x"},1]'),
        (b'[{"ev":"status","status":7}]', '[{"ev":"status","status":7}]'),
        (b'["status"]', '["status"]'),
        (b"\xffstatus\xfe", "\ufffdstatus\ufffd"),
        (b"[" + b"status," * 40 + b"]", ("[" + "status," * 40)[:120]),
        (b"", ""),
        ("", ""),
        (b" [1]", " [1]"),
        ('[{"ev":"status","status":"x","message":"\ud800"}]', None),
        ("\udc80garbage", None),
    ],
)
def test_malformed_frames(frame: bytes | str, preview: str | None) -> None:
    """``preview=None``: a text frame previewed as it is (lone surrogates included)."""
    client = ready_client()
    (request,) = client.subscribe(["T.AAPL"])
    expected = str(frame)[:120] if preview is None else preview
    assert client.receive(frame) == [MalformedFrame(expected)]
    assert client.inflight is request
    assert client.state is ClientState.READY


@pytest.mark.parametrize("frame", [b"garbage", b'{"ev":"T"}', "not json", b"", ""])
def test_garbage_without_status_is_malformed(frame: bytes | str) -> None:
    """Regression: any frame without ``status`` was handed on as Data."""
    client = ready_client()
    (event,) = client.receive(frame)
    assert isinstance(event, MalformedFrame)


@pytest.mark.parametrize(
    "frame",
    ['[{"ev":"status","status":"x","message":"\ud800"}]', "\ud800"],
    ids=["status", "bare"],
)
def test_text_frame_with_lone_surrogate_does_not_crash(frame: str) -> None:
    """Regression: a lone surrogate raised UnicodeEncodeError out of receive()."""
    client = ready_client()
    (event,) = client.receive(frame)
    assert isinstance(event, MalformedFrame)
    assert client.state is ClientState.READY


def test_request_properties() -> None:
    request = Request(1, "subscribe", ("T.A", "T.B"))
    assert request.pending == ()
    assert not request.ok
    request.done = True
    assert request.ok
    request.unanswered = ("T.B",)
    assert not request.ok
    request.unanswered = ()
    request.refused["T.B"] = "no"
    assert not request.ok
    # Requests are identities, not values.
    assert Request(1, "subscribe", ()) != Request(1, "subscribe", ())


def test_event_types_share_a_base() -> None:
    for event in (
        Connected("m"),
        AuthSucceeded(),
        AuthFailed("m"),
        RequestDone(Request(1, "subscribe", ())),
        DisconnectNotice("s", "m"),
        StatusNotice("s", "m"),
        Data(b"[]"),
        MalformedFrame("x"),
    ):
        assert isinstance(event, ClientEvent)
