"""The proxy's routing index, without a loop: exact fan-out, order, whole frames."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from massivekit.proxy._accel import fanout
from massivekit.proxy.router import Deliver, Outgoing, Router, render

FRAME = (
    b'[{"ev":"T","sym":"AAPL","p":1},{"ev":"Q","sym":"MSFT","bp":2},'
    b'{"ev":"T","sym":"SPY","p":3},{"ev":"T","sym":"AAPL","p":4}]'
)
AAPL1 = b'{"ev":"T","sym":"AAPL","p":1}'
MSFT = b'{"ev":"Q","sym":"MSFT","bp":2}'
SPY = b'{"ev":"T","sym":"SPY","p":3}'
AAPL2 = b'{"ev":"T","sym":"AAPL","p":4}'


def recorder(into: list[tuple[bytes, int]]) -> Deliver:
    def deliver(item: Outgoing) -> None:
        into.append((render(item), item[1]))

    return deliver


_ACCELERATED = [False]


@pytest.fixture(
    autouse=True,
    params=[
        pytest.param(False, id="python"),
        pytest.param(
            True,
            id="c",
            marks=pytest.mark.skipif(fanout is None, reason="C fan-out core not built"),
        ),
    ],
)
def implementation(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Every test runs against the pure-Python router and the C core."""
    _ACCELERATED[0] = request.param
    yield request.param
    _ACCELERATED[0] = False


def make(*clients: str) -> tuple[Router, dict[str, list[tuple[bytes, int]]]]:
    router = Router(accelerated=_ACCELERATED[0])
    got: dict[str, list[tuple[bytes, int]]] = {c: [] for c in clients}
    for client in clients:
        router.add_client(client, recorder(got[client]))
    return router, got


def test_each_client_gets_its_events_in_order() -> None:
    router, got = make("a", "b", "c")
    router.subscribe("a", ["T.AAPL"])
    router.subscribe("b", ["T.*"])
    router.subscribe("c", ["Q.MSFT", "T.SPY"])
    assert router.route(FRAME) == 3
    assert got["a"] == [(b"[" + AAPL1 + b"," + AAPL2 + b"]", 2)]
    assert got["b"] == [(b"[" + AAPL1 + b"," + SPY + b"," + AAPL2 + b"]", 3)]
    assert got["c"] == [(b"[" + MSFT + b"," + SPY + b"]", 2)]
    assert router.events_in == {"T": 3, "Q": 1}
    assert router.events_out == 7


def test_a_client_covering_the_frame_gets_it_as_it_came() -> None:
    router, got = make("all")
    router.subscribe("all", ["T.*", "Q.*"])
    router.route(FRAME)
    assert got["all"][0][0] is FRAME
    assert router.whole_frames == 1


def test_wildcard_and_specific_never_deliver_twice() -> None:
    router, got = make("a")
    router.subscribe("a", ["T.AAPL", "T.*"])
    router.route(FRAME)
    assert got["a"][0][1] == 3
    router.unsubscribe("a", ["T.*"])  # the specific topic comes back
    router.route(FRAME)
    assert got["a"][1] == (b"[" + AAPL1 + b"," + AAPL2 + b"]", 2)
    assert router.topics_of("a") == {"T.AAPL"}


def test_unsubscribed_and_removed_clients_get_nothing() -> None:
    router, got = make("a", "b")
    router.subscribe("a", ["T.AAPL"])
    router.subscribe("b", ["T.AAPL"])
    router.unsubscribe("a", ["T.AAPL", "Q.NEVER"])
    router.remove_client("b")
    router.remove_client("zz")
    assert router.route(FRAME) == 0
    assert got == {"a": [], "b": []}
    assert router.topics == frozenset()


def test_bad_frames_are_counted_and_routed_nowhere() -> None:
    router, _got = make("a")
    router.subscribe("a", ["T.*"])
    assert router.route(b'{"ev":"T"}') == 0
    assert router.route(b"[{") == 0
    assert router.bad_frames == 2


def test_status_events_reach_no_one_but_broadcasts_reach_all() -> None:
    router, got = make("a", "b")
    router.subscribe("a", ["T.*"])
    router.route(b'[{"ev":"status","status":"success","message":"x"}]')
    assert got["a"] == []
    assert router.broadcast(b"[1]", -1) == 2
    assert got["b"] == [(b"[1]", -1)]


def test_taps_see_every_frame_and_duplicates_are_refused() -> None:
    router, _ = make("a")
    seen: list[bytes] = []
    router.taps.append(seen.append)
    router.route(FRAME)
    assert seen == [FRAME]
    with pytest.raises(ValueError):
        router.add_client("a", lambda item: None)
