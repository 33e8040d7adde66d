"""A ClientProtocol and a ServerProtocol talking to each other in memory.

The :class:`Link` below plays both I/O layers: it moves the client's actions
to the server and the server's frames to the client until both are quiet, and
it cuts the connection when the server asks for a close or a drop (after the
frames queued before it, as a real socket would), settling the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.protocol.client import (
    AuthFailed,
    AuthSucceeded,
    ClientEvent,
    ClientProtocol,
    ClientState,
    Connected,
    Data,
    DisconnectNotice,
    Request,
    RequestDone,
    StatusNotice,
)
from massivekit.protocol.server import (
    AuthDenial,
    Authenticated,
    AuthGrant,
    AuthRejected,
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
from massivekit.protocol.status import Status
from massivekit.protocol.table import SubscriptionTable
from massivekit.protocol.topics import MAX_OPTION_CONTRACTS, TopicProblem

KEY = "sk-pair-R7fQ2LwN0c"
CONNECTED = b'[{"ev":"status","status":"connected","message":"Connected Successfully"}]'
AUTH_SUCCESS = b'[{"ev":"status","status":"auth_success","message":"authenticated"}]'
AUTH_FAILED = b'[{"ev":"status","status":"auth_failed","message":"authentication failed"}]'
CAP = "at most 1000 contracts per connection"


def authenticator(key: str, market: Market) -> AuthGrant | AuthDenial:
    """Accepts ``KEY`` only; the grant refuses every topic naming MSFT."""
    if key != KEY:
        return AuthDenial()
    return AuthGrant("alice", permits=lambda topic: "MSFT" not in topic)


@dataclass
class Link:
    client: ClientProtocol
    server: ServerProtocol
    text: bool = False
    """Deliver the client's actions as text frames instead of binary ones."""
    client_events: list[ClientEvent] = field(default_factory=list)
    server_events: list[ServerEvent] = field(default_factory=list)
    transcript: list[tuple[str, bytes]] = field(default_factory=list)
    closing: bool = False
    cut: bool = False

    def apply(self, events: list[ServerEvent]) -> None:
        """Record what the server asked for; a close or a drop ends the link."""
        self.server_events.extend(events)
        if any(isinstance(e, (CloseConnection, DropConnection)) for e in events):
            self.closing = True

    def run(self) -> None:
        while not self.cut:
            moved = False
            for data in [] if self.closing else self.client.data_to_send():
                moved = True
                self.transcript.append((">", data))
                self.apply(self.server.receive(data.decode() if self.text else data))
            for frame in self.server.data_to_send():
                moved = True
                self.transcript.append(("<", frame))
                self.client_events.extend(self.client.receive(frame))
            if self.closing:
                self.cut = True
                self.client_events.extend(self.client.close())
            elif not moved:
                return

    def since(self, mark: int) -> list[tuple[str, Any]]:
        """The transcript after ``mark``, decoded."""
        return [(d, json.loads(b)) for d, b in self.transcript[mark:]]


def open_link(
    market: Market = Market.STOCKS, key: str = KEY, *, text: bool = False, **kwargs: Any
) -> Link:
    link = Link(
        ClientProtocol(ApiKey(key), market, **kwargs), ServerProtocol(market, authenticator)
    )
    link.text = text
    link.run()
    return link


def only(requests: list[Request]) -> Request:
    (request,) = requests
    return request


def ack(topic: str) -> dict[str, str]:
    return {"ev": "status", "status": "success", "message": f"subscribed to: {topic}"}


def unack(topic: str) -> dict[str, str]:
    return {"ev": "status", "status": "success", "message": f"unsubscribed to: {topic}"}


NOT_AUTHORIZED = {"ev": "status", "status": "error", "message": "not authorized"}


# -- handshake --------------------------------------------------------------------


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_handshake(text: bool) -> None:
    link = open_link(text=text)
    assert link.transcript == [
        ("<", CONNECTED),
        (">", b'{"action":"auth","params":"sk-pair-R7fQ2LwN0c"}'),
        ("<", AUTH_SUCCESS),
    ]
    assert link.client_events == [Connected("Connected Successfully"), AuthSucceeded()]
    assert link.server_events == [Authenticated("alice")]
    assert link.client.state is ClientState.READY
    assert link.server.state is ServerState.READY
    assert link.server.principal == "alice"
    assert KEY not in repr(link.client)
    assert all(KEY not in repr(e) for e in [*link.client_events, *link.server_events])


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_subscribe_before_connecting_goes_out_after_auth(text: bool) -> None:
    client = ClientProtocol(ApiKey(KEY), Market.STOCKS)
    request = only(client.subscribe(["T.AAPL", "Q.*"]))
    link = Link(client, ServerProtocol(Market.STOCKS, authenticator), text=text)
    link.run()
    assert link.since(2) == [
        ("<", [{"ev": "status", "status": "auth_success", "message": "authenticated"}]),
        (">", {"action": "subscribe", "params": "T.AAPL,Q.*"}),
        ("<", [ack("T.AAPL"), ack("Q.*")]),
    ]
    assert request.ok
    assert link.client.subscribed == link.server.topics == {"T.AAPL", "Q.*"}


def test_requests_queued_before_auth_are_judged_after_it() -> None:
    client = ClientProtocol(ApiKey(KEY), Market.STOCKS)
    local = only(client.subscribe(["XT.BTC-USD"]))
    remote = only(client.subscribe(["T.AAPL"]))
    assert not local.done
    assert not remote.done
    link = Link(client, ServerProtocol(Market.STOCKS, authenticator))
    link.run()
    assert link.client_events == [
        Connected("Connected Successfully"),
        AuthSucceeded(),
        RequestDone(local),
        RequestDone(remote),
    ]
    assert set(local.refused) == {"XT.BTC-USD"}
    assert remote.ok
    assert link.since(2)[1] == (">", {"action": "subscribe", "params": "T.AAPL"})


# -- subscriptions ------------------------------------------------------------------


def test_subscribe_with_refusals() -> None:
    link = open_link()
    mark = len(link.transcript)
    request = only(link.client.subscribe(["T.AAPL", "T.MSFT", "Q.AAPL", "Q.MSFT", "AM.AAPL"]))
    link.run()
    # One frame, the answers in topic order.
    assert link.since(mark) == [
        (">", {"action": "subscribe", "params": "T.AAPL,T.MSFT,Q.AAPL,Q.MSFT,AM.AAPL"}),
        ("<", [ack("T.AAPL"), NOT_AUTHORIZED, ack("Q.AAPL"), NOT_AUTHORIZED, ack("AM.AAPL")]),
    ]
    assert request.done
    assert request.acked == {"T.AAPL", "Q.AAPL", "AM.AAPL"}
    assert request.refused == {"T.MSFT": "not authorized", "Q.MSFT": "not authorized"}
    assert request.unanswered == ()
    assert link.client.subscribed == link.server.topics == {"T.AAPL", "Q.AAPL", "AM.AAPL"}
    assert link.server_events[-2:] == [
        TopicsAdded(("T.AAPL", "Q.AAPL", "AM.AAPL")),
        TopicsRefused(("T.MSFT", "Q.MSFT"), "not authorized"),
    ]
    assert link.client.inflight is None


def test_everything_refused() -> None:
    link = open_link()
    request = only(link.client.subscribe(["T.MSFT", "AM.MSFT"]))
    link.run()
    assert request.refused == {"T.MSFT": "not authorized", "AM.MSFT": "not authorized"}
    assert link.client.subscribed == link.server.topics == set()


def test_topics_the_server_would_ignore_never_leave_the_client() -> None:
    link = open_link()
    mark = len(link.transcript)
    request = only(link.client.subscribe(["XT.BTC-USD", "TAAPL", "T.AAPL"]))
    link.run()
    assert link.since(mark) == [
        (">", {"action": "subscribe", "params": "T.AAPL"}),
        ("<", [ack("T.AAPL")]),
    ]
    assert set(request.refused) == {"XT.BTC-USD", "TAAPL"}
    assert request.acked == {"T.AAPL"}
    assert not any(isinstance(e, TopicsIgnored) for e in link.server_events)


def test_repeated_subscribe_is_answered_by_the_client() -> None:
    link = open_link()
    link.client.subscribe(["T.AAPL"])
    link.run()
    mark = len(link.transcript)
    request = only(link.client.subscribe(["T.AAPL"]))
    link.run()
    assert link.since(mark) == []
    assert request.ok


def test_unsubscribe() -> None:
    link = open_link()
    link.client.subscribe(["T.AAPL", "T.GOOG"])
    link.run()
    mark = len(link.transcript)
    request = only(link.client.unsubscribe(["T.AAPL", "T.NVDA"]))
    link.run()
    assert link.since(mark) == [
        (">", {"action": "unsubscribe", "params": "T.AAPL"}),
        ("<", [unack("T.AAPL")]),
    ]
    assert request.ok
    assert link.server_events[-1] == TopicsRemoved(("T.AAPL",))
    assert link.client.subscribed == link.server.topics == {"T.GOOG"}


def test_wildcards() -> None:
    link = open_link()
    request = only(link.client.subscribe(["T.*", "A.*", "AM.AAPL"]))
    link.run()
    assert request.ok
    assert link.server.wants("T", "AAPL")
    assert link.server.wants("A", "MSFT")
    assert link.server.wants("AM", "AAPL")
    # PROTOCOL.md: A.* does not cover AM.*.
    assert not link.server.wants("AM", "MSFT")
    only(link.client.unsubscribe(["T.*"]))
    link.run()
    assert not link.server.wants("T", "AAPL")
    assert link.client.subscribed == link.server.topics == {"A.*", "AM.AAPL"}


def test_data_for_wanted_topics_reaches_the_client_untouched() -> None:
    link = open_link()
    link.client.subscribe(["T.AAPL"])
    link.run()
    trade = b'[{"ev":"T","sym":"AAPL","p":189.5,"s":100,"t":1700000000000}]'
    assert link.server.wants("T", "AAPL")
    (event,) = link.client.receive(trade)
    assert isinstance(event, Data)
    assert event.frame is trade


def test_batches_go_one_at_a_time() -> None:
    link = open_link(batch_size=2)
    mark = len(link.transcript)
    requests = link.client.subscribe(["T.A", "T.MSFT", "T.B", "T.C", "T.D"])
    link.run()
    directions = [d for d, _ in link.since(mark)]
    # Every action waits for the answers to the one before (one frame each).
    assert directions == [">", "<", ">", "<", ">", "<"]
    assert [r.refused for r in requests] == [{"T.MSFT": "not authorized"}, {}, {}]
    assert all(r.done for r in requests)
    assert link.client.subscribed == link.server.topics == {"T.A", "T.B", "T.C", "T.D"}


def test_table_drives_the_client() -> None:
    """The proxy's shape: a table for many subscribers, one client upstream."""
    link = open_link()
    table: SubscriptionTable[str] = SubscriptionTable()

    def apply(delta: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        subscribe, unsubscribe = delta
        link.client.subscribe(subscribe)
        link.client.unsubscribe(unsubscribe)
        link.run()

    apply(table.add("p1", ["T.AAPL", "T.GOOG", "AM.AAPL"]))
    apply(table.add("p2", ["T.*", "A.*"]))
    assert link.server.topics == table.upstream == {"T.*", "A.*", "AM.AAPL"}
    apply(table.drop("p2"))
    assert link.server.topics == table.upstream == {"T.AAPL", "T.GOOG", "AM.AAPL"}
    apply(table.drop("p1"))
    assert link.server.topics == table.upstream == frozenset()
    assert link.client.subscribed == set()


# -- options ----------------------------------------------------------------------


def contracts(n: int, start: int = 0, prefix: str = "Q") -> list[str]:
    return [f"{prefix}.O:SPY2412{i:08d}C" for i in range(start, start + n)]


@pytest.mark.parametrize("topic", ["Q.*", "FMV.*"])
def test_options_wildcard_is_refused_by_the_client(topic: str) -> None:
    link = open_link(Market.OPTIONS)
    mark = len(link.transcript)
    request = only(link.client.subscribe([topic]))
    link.run()
    assert link.since(mark) == []
    assert request.refused == {topic: f"{TopicProblem.WILDCARD_NOT_ALLOWED.value}: {topic}"}


def test_options_contract_cap() -> None:
    link = open_link(Market.OPTIONS)
    requests = link.client.subscribe(contracts(MAX_OPTION_CONTRACTS))
    link.run()
    assert len(requests) == 2
    assert all(r.ok for r in requests)
    assert len(link.server.topics) == MAX_OPTION_CONTRACTS
    mark = len(link.transcript)
    extra = contracts(1, start=MAX_OPTION_CONTRACTS)[0]
    request = only(link.client.subscribe([extra]))
    link.run()
    assert link.since(mark) == []  # the client knew
    assert request.refused == {extra: CAP}
    # Unsubscribing one contract makes room again.
    link.client.unsubscribe(contracts(1))
    link.run()
    request = only(link.client.subscribe([extra]))
    link.run()
    assert request.ok
    assert len(link.server.topics) == MAX_OPTION_CONTRACTS


def test_options_contract_cap_within_one_batch() -> None:
    link = open_link(Market.OPTIONS, batch_size=2_000)
    topics = contracts(MAX_OPTION_CONTRACTS + 1)
    mark = len(link.transcript)
    request = only(link.client.subscribe(topics))
    link.run()
    # The client counts the topics before it in the batch: the extra one stays home.
    (action,) = [body for d, body in link.since(mark) if d == ">"]
    assert action["params"].split(",") == topics[:-1]
    assert request.refused == {topics[-1]: CAP}
    assert len(request.acked) == MAX_OPTION_CONTRACTS
    assert link.client.subscribed == link.server.topics == set(topics[:-1])


def test_fmv_after_a_thousand_quotes_is_refused_by_the_client() -> None:
    """Regression: the client counted the cap per prefix, the server per connection."""
    link = open_link(Market.OPTIONS)
    link.client.subscribe(contracts(MAX_OPTION_CONTRACTS))
    link.run()
    mark = len(link.transcript)
    fmv = contracts(1, prefix="FMV")[0]
    request = only(link.client.subscribe([fmv]))
    assert request.done
    link.run()
    assert link.since(mark) == []
    assert request.refused == {fmv: CAP}


# -- endings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.MAX_CONNECTIONS, 1008),
        (Status.SLOW_CONSUMER, 1008),
        (Status.FORCE_DISCONNECT, 1000),
    ],
)
def test_disconnect_statuses(status: Status, code: int) -> None:
    link = open_link()
    link.client.subscribe(["T.AAPL"])
    link.run()
    pending = only(link.client.subscribe(["T.GOOG"]))  # its action never arrives
    link.apply(link.server.disconnect(status))
    link.run()
    assert link.cut
    assert CloseConnection(code, status) in link.server_events
    notices = [e for e in link.client_events if isinstance(e, DisconnectNotice)]
    assert [n.status for n in notices] == [status]
    assert link.client_events[-1] == RequestDone(pending)
    assert pending.unanswered == ("T.GOOG",)
    assert link.client.state is ClientState.CLOSED
    assert link.server.state is ServerState.CLOSED


def test_bad_key() -> None:
    client = ClientProtocol(ApiKey("wrong-key"), Market.STOCKS)
    request = only(client.subscribe(["T.AAPL"]))
    link = Link(client, ServerProtocol(Market.STOCKS, authenticator))
    link.run()
    assert link.transcript == [
        ("<", CONNECTED),
        (">", b'{"action":"auth","params":"wrong-key"}'),
        ("<", AUTH_FAILED),
    ]
    assert link.server_events == [
        AuthRejected("authentication failed"),
        DropConnection("auth_failed"),
    ]
    assert not any(isinstance(e, CloseConnection) for e in link.server_events)
    assert link.client_events == [
        Connected("Connected Successfully"),
        AuthFailed("authentication failed"),
        RequestDone(request),
    ]
    assert request.unanswered == ("T.AAPL",)
    assert link.client.state is ClientState.CLOSED
    assert link.server.state is ServerState.CLOSED


def test_auth_timeout() -> None:
    client = ClientProtocol(ApiKey(KEY), Market.STOCKS)
    request = only(client.subscribe(["T.AAPL"]))
    server = ServerProtocol(Market.STOCKS, authenticator)
    link = Link(client, server)
    (greeting,) = server.data_to_send()
    link.client_events += client.receive(greeting)
    client.data_to_send()  # the auth action is lost on the way
    link.apply(server.auth_timed_out())
    link.run()
    assert link.server_events == [CloseConnection(1008, "auth_timeout")]
    assert link.client_events == [
        Connected("Connected Successfully"),
        StatusNotice("auth_timeout", "authentication timed out"),
        RequestDone(request),
    ]
    assert request.unanswered == ("T.AAPL",)


def test_auth_timeout_closes_the_client_and_later_requests_settle_at_once() -> None:
    client = ClientProtocol(ApiKey(KEY), Market.STOCKS)
    server = ServerProtocol(Market.STOCKS, authenticator)
    link = Link(client, server)
    (greeting,) = server.data_to_send()
    client.receive(greeting)
    client.data_to_send()  # lost
    events = server.auth_timed_out()
    (frame,) = server.data_to_send()
    assert client.receive(frame) == [StatusNotice("auth_timeout", "authentication timed out")]
    assert client.state is ClientState.CLOSED
    request = only(client.subscribe(["T.AAPL"]))
    assert request.done
    assert request.unanswered == ("T.AAPL",)
    link.apply(events)
    link.run()
    assert client.data_to_send() == []


# -- fixed bugs (regressions) ----------------------------------------------------------


def test_unsubscribe_right_after_subscribe() -> None:
    """Local answers were decided when queued: the unsubscribe was never sent."""
    link = open_link()
    subscribe = only(link.client.subscribe(["T.AAPL"]))
    unsubscribe = only(link.client.unsubscribe(["T.AAPL"]))
    link.run()
    assert subscribe.ok
    assert unsubscribe.ok
    assert link.server.topics == frozenset()
    assert link.client.subscribed == set()


def test_subscribing_twice_before_the_ack() -> None:
    """The second subscribe was sent; the server ignored it and it blocked the queue."""
    link = open_link()
    mark = len(link.transcript)
    first = only(link.client.subscribe(["T.AAPL"]))
    second = only(link.client.subscribe(["T.AAPL"]))
    third = only(link.client.subscribe(["T.GOOG"]))
    link.run()
    assert link.since(mark) == [
        (">", {"action": "subscribe", "params": "T.AAPL"}),
        ("<", [ack("T.AAPL")]),
        (">", {"action": "subscribe", "params": "T.GOOG"}),
        ("<", [ack("T.GOOG")]),
    ]
    assert first.ok
    assert second.ok
    assert third.ok
    assert not any(isinstance(e, TopicsIgnored) for e in link.server_events)
    assert link.client.inflight is None


def test_mixed_refusal_reasons_are_attributed_in_order() -> None:
    """The server grouped refusals by message, so the client swapped the reasons.

    The client only sends a topic over the cap when its view of the session is
    behind the server's: here a request expired while its acks were on the way.
    """
    link = open_link(Market.OPTIONS, batch_size=2_000)
    client, server = link.client, link.server
    client.subscribe(contracts(MAX_OPTION_CONTRACTS))
    (action,) = client.data_to_send()
    server.receive(action)
    client.expire_inflight()  # the I/O layer's timer fires first
    for frame in server.data_to_send():
        assert all(isinstance(e, StatusNotice) for e in client.receive(frame))
    assert client.subscribed == set()
    assert len(server.topics) == MAX_OPTION_CONTRACTS
    fmv = contracts(1, prefix="FMV")[0]
    mark = len(link.transcript)
    request = only(client.subscribe(["T.O:MSFT1", fmv, "T.O:A", "T.O:MSFT2"]))
    link.run()
    assert link.since(mark) == [
        (">", {"action": "subscribe", "params": f"T.O:MSFT1,{fmv},T.O:A,T.O:MSFT2"}),
        (
            "<",
            [
                NOT_AUTHORIZED,
                {"ev": "status", "status": "error", "message": CAP},
                ack("T.O:A"),
                NOT_AUTHORIZED,
            ],
        ),
    ]
    assert request.refused == {
        "T.O:MSFT1": "not authorized",
        fmv: CAP,
        "T.O:MSFT2": "not authorized",
    }
    assert request.acked == {"T.O:A"}


def test_swapping_a_contract_at_the_cap() -> None:
    """The cap was judged when queued, before the unsubscribe ahead made room."""
    link = open_link(Market.OPTIONS)
    link.client.subscribe(contracts(MAX_OPTION_CONTRACTS))
    link.run()
    extra = contracts(1, start=MAX_OPTION_CONTRACTS)[0]
    link.client.unsubscribe(contracts(1))
    request = only(link.client.subscribe([extra]))
    assert not request.done
    link.run()
    assert request.ok
    assert link.client.subscribed == link.server.topics
    assert extra in link.server.topics
    assert contracts(1)[0] not in link.server.topics
