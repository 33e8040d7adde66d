"""A client's send buffer, both kinds: the Python SendBuffer and the C core's Sink.

Both must behave the same as far as the session sees: frames out in the
order they went in, as WebSocket text frames, with their frame and event
counts; the oldest data frames dropped first, control frames never.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from massivekit.proxy._accel import fanout
from massivekit.proxy.downstream import CONTROL, SendBuffer, SendQueue
from massivekit.wsframe import ws_text_header

KINDS = [pytest.param("python", id="python")]
if fanout is not None:
    KINDS.append(pytest.param("c", id="c"))


def make(kind: str, mark: Callable[[], object]) -> SendQueue:
    if kind == "c":
        assert fanout is not None
        sink: SendQueue = fanout.Sink(mark)
        return sink
    return SendBuffer(mark)


def wire(payload: bytes) -> bytes:
    return ws_text_header(len(payload)) + payload


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_frames_come_out_in_order_as_websocket_frames(kind: str) -> None:
    marks: list[int] = []
    buffer = make(kind, lambda: marks.append(1))
    buffer.push(b'{"ev":"T"}', 1, True)
    buffer.push(b'[{"ev":"status"}]', CONTROL)
    buffer.push(b"x" * 70_000, 3, False)
    assert buffer.frames == 3
    data, frames, events = buffer.take()
    assert data == wire(b'[{"ev":"T"}]') + wire(b'[{"ev":"status"}]') + wire(b"x" * 70_000)
    assert (frames, events) == (3, 4)
    assert (buffer.frames, buffer.buffered) == (0, 0)
    assert buffer.take() == (b"", 0, 0)
    assert marks  # the client was marked for the writer


def test_buffered_bytes_track_pushes_takes_and_drops(kind: str) -> None:
    buffer = make(kind, lambda: None)
    sizes = []
    for n in range(1, 40):
        buffer.push(b"e" * n * 10, 1, True)
        sizes.append(n * 10 + 2)
        assert buffer.buffered >= sum(sizes)  # the C sink counts the headers too
        assert buffer.buffered <= sum(sizes) + 4 * len(sizes)
    buffer.take()
    assert buffer.buffered == 0
    buffer.push(b"abc", 1)
    assert 3 <= buffer.buffered <= 5


def test_drop_oldest_keeps_control_frames_in_order(kind: str) -> None:
    buffer = make(kind, lambda: None)
    buffer.push(b"d1" * 50, 5, True)
    buffer.push(b"c1", CONTROL)
    buffer.push(b"d2" * 50, 7, True)
    buffer.push(b"d3" * 50, 2, True)
    buffer.push(b"c2", CONTROL)
    frames, events = buffer.drop_oldest(150)  # two data frames' worth
    assert (frames, events) == (2, 12)
    data, frames, events = buffer.take()
    assert data == wire(b"c1") + wire(b"[" + b"d3" * 50 + b"]") + wire(b"c2")
    assert (frames, events) == (3, 2)


def test_drop_oldest_with_nothing_over_drops_nothing(kind: str) -> None:
    buffer = make(kind, lambda: None)
    buffer.push(b"x", 1)
    assert buffer.drop_oldest(0) == (0, 0)
    assert buffer.frames == 1
    buffer.clear()
    assert (buffer.frames, buffer.buffered) == (0, 0)


def test_the_c_sink_marks_when_it_stops_being_empty() -> None:
    if fanout is None:
        pytest.skip("C fan-out core not built")
    marks: list[int] = []
    sink = fanout.Sink(lambda: marks.append(1))
    sink.push(b"a", 1)
    sink.push(b"b", 1)
    assert len(marks) == 1
    sink.take()
    sink.push(b"c", 1)
    assert len(marks) == 2
    with pytest.raises(TypeError):
        sink.push("text", 1)  # type: ignore[arg-type]


def test_a_burst_does_not_keep_its_memory(kind: str) -> None:
    buffer = make(kind, lambda: None)
    for _ in range(300):
        buffer.push(b"b" * 4_000, 1, True)  # a backed-up client's 1.2 MB
    data, frames, _ = buffer.take()
    assert frames == 300
    assert len(data) > 1_200_000
    buffer.push(b"small", 1)
    assert buffer.take()[0] == wire(b"small")  # held little: the C sink frees its memory
    buffer.push(b"again", 1, True)  # and grows it anew
    assert buffer.take() == (wire(b"[again]"), 1, 1)
