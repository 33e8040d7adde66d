"""The C fan-out core against the pure-Python router: the same output, frame for frame.

The Python router (``Router(accelerated=False)``) is the reference. Every
frame here goes through both, with the same clients and topics, and
everything observable must match: each client's frames, in order, the
counters, the bad frames. The frames are every cluster's simulated events,
odd events (unknown codes, missing or mistyped fields, statuses), JSON the
C scanner hands back to msgspec (escapes, non-ASCII, repeated keys), invalid
JSON, and thousands of random one-byte mutations of real frames.

Without the compiled core these tests are skipped, unless
``MASSIVEKIT_REQUIRE_SPEEDUPS`` is set (CI sets it: there, a build that
silently fell back to pure Python is a failure).
"""

from __future__ import annotations

import os
import random
import tracemalloc

import pytest

from massivekit.config import Market
from massivekit.models.routing import INSTRUMENT_FIELDS
from massivekit.proxy._accel import fanout
from massivekit.proxy.router import Outgoing, Router, render
from massivekit.sim.market import MarketSimulator
from massivekit.wsframe import ws_text_header

if fanout is None:
    if os.environ.get("MASSIVEKIT_REQUIRE_SPEEDUPS"):
        raise RuntimeError(
            "MASSIVEKIT_REQUIRE_SPEEDUPS is set but massivekit.proxy._fanout is absent"
        )
    pytest.skip("C fan-out core not built", allow_module_level=True)

Got = dict[int, list[tuple[bytes, int, bool]]]


class Pair:
    """The same clients on a Python router and two C routers.

    The second C router writes into each client's send buffer (a ``Sink``
    without ``deliver``, as the proxy's sessions have): what it holds must
    be the Python router's frames, framed for the socket.
    """

    def __init__(self, subscriptions: list[list[str]]) -> None:
        assert fanout is not None
        self.routers = (Router(accelerated=False), Router(accelerated=True))
        self.got: tuple[Got, Got] = ({}, {})
        for router, got in zip(self.routers, self.got, strict=True):
            for client, topics in enumerate(subscriptions):
                got[client] = []
                router.add_client(client, self._recorder(got[client]))
                router.subscribe(client, topics)
        self.buffered = Router(accelerated=True)
        self.sinks = [fanout.Sink(lambda: None) for _ in subscriptions]
        for client, (topics, sink) in enumerate(zip(subscriptions, self.sinks, strict=True)):
            self.buffered.add_client(client, lambda item: None, sink=sink)
            self.buffered.subscribe(client, topics)

    @staticmethod
    def _recorder(into: list[tuple[bytes, int, bool]]):  # type: ignore[no-untyped-def]
        def deliver(item: Outgoing) -> None:
            into.append((render(item), item[1], item[2]))

        return deliver

    def route(self, frame: bytes) -> None:
        python, c = self.routers
        delivered = python.route(frame)
        assert delivered == c.route(frame) == self.buffered.route(frame), frame

    def check(self) -> None:
        python, c = self.routers
        assert self.got[0] == self.got[1]
        for client, sink in enumerate(self.sinks):
            data, frames, events = sink.take()
            expected = self.got[0][client]
            assert data == b"".join(ws_text_header(len(f)) + f for f, _, _ in expected)
            assert (frames, events) == (len(expected), sum(n for _, n, _ in expected))
            self.got[0][client].clear()
            self.got[1][client].clear()
        assert python.events_in == c.events_in
        assert dict(python.events_out_by_ev) == dict(c.events_out_by_ev)
        assert python.events_in == self.buffered.events_in
        for name in ("frames_in", "frames_out", "whole_frames", "bad_frames"):
            assert getattr(python, name) == getattr(c, name) == getattr(self.buffered, name), name


def _frames(market: Market, seed: int, count: int) -> tuple[list[bytes], list[str]]:
    batch = MarketSimulator(market, seed).batch(count, 1_700_000_000_000)
    frames, i, rng = [], 0, random.Random(seed)
    while i < len(batch.data):
        size = rng.choice((1, 2, 7, 50, 100))
        frames.append(b"[" + b",".join(batch.data[i : i + size]) + b"]")
        i += size
    return frames, batch.topics


def _mix(topics: list[str], seed: int, clients: int = 12) -> list[list[str]]:
    rng = random.Random(seed)
    distinct = sorted(set(topics))
    codes = sorted({t.partition(".")[0] for t in distinct})
    subscriptions: list[list[str]] = []
    for client in range(clients):
        held = rng.sample(distinct, min(len(distinct), rng.randint(1, 30)))
        if client % 4 == 0:
            held.append(rng.choice(codes) + ".*")
        if client == 1:
            held = [c + ".*" for c in codes]  # takes every frame whole
        subscriptions.append(held)
    return subscriptions


def test_the_compiled_core_knows_the_same_instrument_fields() -> None:
    assert fanout is not None
    assert dict(INSTRUMENT_FIELDS) == fanout.INSTRUMENT_FIELDS


@pytest.mark.parametrize(
    "market", [m for m in Market if not m.value.startswith("futures/")], ids=str
)
def test_every_cluster_routes_the_same(market: Market) -> None:
    frames, topics = _frames(market, 3, 3_000)
    pair = Pair(_mix(topics, 3))
    for frame in frames:
        pair.route(frame)
    pair.check()
    assert pair.routers[1].events_out > 0


ODD_FRAMES = [
    b"[]",
    b" [ ] ",
    b'[{"ev":"status","status":"connected","message":"Connected Successfully"}]',
    b'[{"ev":"T","sym":"AAPL","p":1},{"ev":"status","status":"x","message":"y","sym":"AAPL"}]',
    b'[{"ev":"ZZ","sym":"AAPL"},{"ev":"ZZ","pair":"BTC-USD"},{"ev":"ZZ","T":"X","sym":5}]',
    b'[{"sym":"AAPL","p":1},{"ev":5,"sym":"AAPL"},{"ev":null,"sym":"AAPL"}]',
    b'[{"ev":"T","sym":5,"pair":"AAPL"},{"ev":"T","sym":null},{"ev":"T"}]',
    b'[{"ev":"XT","pair":"BTC-USD","p":1.5},{"ev":"C","p":"USD/CNH","a":7.1}]',
    b'[{"ev":"LULD","T":"AAPL","h":1},{"ev":"V","T":"I:SPX","val":5}]',
    b'[1,"x",null,true,[1,2],{"ev":"T","sym":"AAPL"}]',
    b'[ {"ev" : "T" ,\n "sym":\t"AAPL" , "c":[1,{"a":[]}],"x":{"y":null}} ,{"ev":"Q","sym":"SPY"}]',
    b'[{"ev":"T","sym":"AAPL","p":-0.5e+3,"s":0,"x":1E2,"y":-12.25}]',
    b'[{"ev":"T","sym":"AA\\u0050L","p":1},{"ev":"T","sym":"AAPL"}]',
    b'[{"ev":"T","sym":"AAPL","note":"caf\xc3\xa9"},{"ev":"Q","sym":"SPY"}]',
    b'[{"ev":"T","sym":"\xc3\xa9"}]',
    b'[{"ev":"T","sym":"AAPL","sym":"SPY"}]',
    b'[{"ev":"T","ev":"Q","sym":"SPY"}]',
    b'[{"ev":"Q","sym":"SPY","k":"a\\"b"}]',
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    # not JSON, or not an array: both count a bad frame
    b"",
    b"{}",
    b'{"ev":"T"}',
    b"[",
    b"]",
    b'[{"ev":"T","sym":"AAPL"},]',
    b'[{"ev":"T" "sym":"AAPL"}]',
    b'[{"ev":"T","sym":"AAPL",}]',
    b'[{"ev":"T","sym":"AAPL","p":01}]',
    b'[{"ev":"T","sym":"AAPL","p":1.}]',
    b'[{"ev":"T","sym":"AAPL","p":-}]',
    b'[{"ev":"T","sym":"AAPL","p":1e}]',
    b'[{"ev":"T","sym":"AAPL","p":tru}]',
    b'[{"ev":"T","sym":"AAPL","p":+1}]',
    b'[{"ev":"T","sym":"AAPL\x01"}]',
    b'[{"ev":"T","sym":"AAPL"}] x',
    b'[{"ev":"T","sym":"AAPL"}][]',
    b'[{"ev":"T","sym":"AAPL"',
    b'[{"ev":"T","sym":"AAPL}]',
    b'[{ev:"T"}]',
    b'[{"ev":"T","sym":"AAPL","x":NaN}]',
]


def test_odd_and_bad_frames_route_the_same() -> None:
    subscriptions = [["T.*"], ["T.AAPL", "Q.SPY"], ["ZZ.AAPL", "ZZ.BTC-USD"], ["ZZ.*", "Q.*"]]
    subscriptions += [["XT.BTC-USD", "C.USD/CNH", "LULD.AAPL", "V.I:SPX"], ["T.AAPL", "T.APPL"]]
    subscriptions += [["T.\u00e9", "T.*", "Q.*"]]
    pair = Pair(subscriptions)
    for frame in ODD_FRAMES:
        pair.route(frame)
        pair.check()
    assert pair.routers[1].bad_frames > 15


def test_random_mutations_of_real_frames_route_the_same() -> None:
    frames, topics = _frames(Market.STOCKS, 5, 400)
    pair = Pair(_mix(topics, 5, clients=6))
    small = [f for f in frames if len(f) < 1_000]
    rng = random.Random(11)
    alphabet = b'{}[]",:.-+eE0123456789 \\tnulrsfa\x00\x7f\xc3'
    for _ in range(4_000):
        frame = bytearray(rng.choice(small))
        at = rng.randrange(len(frame))
        kind = rng.randrange(3)
        if kind == 0:
            del frame[at]
        elif kind == 1:
            frame.insert(at, rng.choice(alphabet))
        else:
            frame[at] = rng.choice(alphabet)
        pair.route(bytes(frame))
    pair.check()
    assert 0 < pair.routers[1].bad_frames < 4_000


def test_a_frame_of_many_codes_routes_the_same() -> None:
    events = [b'{"ev":"E%d","sym":"X"}' % i for i in range(100)]
    pair = Pair([[f"E{i}.X" for i in range(0, 100, 3)], [f"E{i}.*" for i in range(50)]])
    pair.route(b"[" + b",".join(events) + b"]")
    pair.check()


def test_a_sink_is_empty_between_frames_even_when_delivery_fails() -> None:
    assert fanout is not None
    calls: list[Outgoing] = []

    def deliver(item: Outgoing) -> None:
        calls.append(item)
        raise RuntimeError("deliver failed")

    router = Router(accelerated=True)
    router.add_client("bad", deliver)
    router.add_client("good", lambda item: None)
    router.subscribe("bad", ["T.*"])
    router.subscribe("good", ["T.*"])
    with pytest.raises(RuntimeError, match="deliver failed"):
        router.route(b'[{"ev":"T","sym":"A"},{"ev":"Q","sym":"B"}]')
    sinks = router._wild["T"]  # the index is what is checked
    assert [s.pending for s in sinks] == [0, 0]
    calls.clear()
    with pytest.raises(RuntimeError):
        router.route(b'[{"ev":"T","sym":"A"}]')
    assert [render(c) for c in calls] == [b'[{"ev":"T","sym":"A"}]']


def test_sinks_take_only_callables_and_routes_only_sinks() -> None:
    assert fanout is not None
    with pytest.raises(TypeError):
        fanout.Sink(1, print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Sink"):
        fanout.route(b'[{"ev":"T","sym":"A"}]', {"T": (print,)}, {}, {}, {})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="dicts"):
        fanout.route(b"[]", [], {}, {}, {})  # type: ignore[arg-type]
    assert fanout.route("[]", {}, {}, {}, {}) is None  # type: ignore[arg-type]


def test_routing_keeps_no_reference_it_does_not_own() -> None:
    """Regression: each event's instrument str leaked one reference (a slow leak)."""
    symbols = [f"S{i}" for i in range(6_000)]  # more than the core's str cache holds
    frames = [
        b"["
        + b",".join(b'{"ev":"T","sym":"%s","p":1}' % s.encode() for s in symbols[i : i + 100])
        + b"]"
        for i in range(0, len(symbols), 100)
    ]
    router = Router(accelerated=True)
    assert fanout is not None
    sink = fanout.Sink(lambda: None)
    router.add_client("c", lambda item: None, sink=sink)
    router.subscribe("c", [f"T.{s}" for s in symbols[::2]])

    def one_pass() -> None:
        for frame in frames:
            router.route(frame)
        sink.take()

    one_pass()
    tracemalloc.start()
    try:
        one_pass()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            one_pass()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000, grown


def test_a_mark_that_raises_leaves_a_whole_frame_and_no_spans() -> None:
    assert fanout is not None

    def mark() -> None:
        raise RuntimeError("mark failed")

    sink = fanout.Sink(mark)
    router = Router(accelerated=True)
    router.add_client("c", lambda item: None, sink=sink)
    router.subscribe("c", ["T.*"])
    with pytest.raises(RuntimeError, match="mark failed"):
        router.route(b'[{"ev":"T","sym":"A"},{"ev":"Q","sym":"B"}]')
    assert sink.pending == 0
    assert sink.take() == (ws_text_header(22) + b'[{"ev":"T","sym":"A"}]', 1, 1)
