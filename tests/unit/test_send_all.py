"""The C core's write round, ``send_all``: one ``send()`` per attached, idle client.

Pure: a socket pair stands for a client's connection and a small class for
the transport that owns it. What matters: the bytes arrive whole and in
order; a client whose transport holds data, is closing, or whose sink is not
attached is handed back untouched for the Python path; what a full socket
did not take comes back, to be written after what it did take.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from massivekit.proxy._accel import fanout
from massivekit.wsframe import ws_text_header

if fanout is None:
    if os.environ.get("MASSIVEKIT_REQUIRE_SPEEDUPS"):
        raise RuntimeError(
            "MASSIVEKIT_REQUIRE_SPEEDUPS is set but massivekit.proxy._fanout is absent"
        )
    pytest.skip("C fan-out core not built", allow_module_level=True)


class Transport:
    """What send_all asks of a transport: is it closing, and does it hold data."""

    def __init__(self) -> None:
        self.closing = False
        self.held = 0

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.held


class Session:
    def __init__(self, sink: Any) -> None:
        self.sink = sink


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def attached(sock: socket.socket, transport: Transport) -> tuple[Session, Any]:
    assert fanout is not None
    marks: list[int] = []
    sink = fanout.Sink(lambda: marks.append(1))
    sink.attach(sock.fileno(), transport)
    return Session(sink), sink


def read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def wire(payload: bytes) -> bytes:
    return ws_text_header(len(payload)) + payload


def test_a_round_writes_each_attached_sink_whole_and_counts_it(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    assert fanout is not None
    ours, theirs = pair
    session, sink = attached(ours, Transport())
    sink.push(b'[{"ev":"T"}]', 1)
    sink.push(b'{"ev":"status"}', -1)
    sink.push(b'{"ev":"Q"},{"ev":"Q"}', 2, wrap=True)
    assert fanout.send_all([session]) == []
    assert read_all(theirs) == (
        wire(b'[{"ev":"T"}]') + wire(b'{"ev":"status"}') + wire(b'[{"ev":"Q"},{"ev":"Q"}]')
    )
    assert (sink.frames, sink.buffered) == (0, 0)
    frames, events, size = sink.sent
    assert (frames, events) == (3, 3)  # control frames count as frames, not events
    frames_out = (b'[{"ev":"T"}]', b'{"ev":"status"}', b'[{"ev":"Q"},{"ev":"Q"}]')
    assert size == sum(len(wire(frame)) for frame in frames_out)
    sink.push(b"[]", 0)
    assert fanout.send_all([session]) == []
    assert read_all(theirs) == wire(b"[]")
    assert sink.sent[0] == 4


def test_clients_it_cannot_write_directly_come_back_untouched(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    assert fanout is not None
    ours, theirs = pair
    busy, closing = Transport(), Transport()
    busy.held, closing.closing = 10, True
    held, held_sink = attached(ours, busy)
    gone, gone_sink = attached(ours, closing)
    loose = Session(fanout.Sink(lambda: None))  # never attached
    detached, detached_sink = attached(ours, Transport())
    detached_sink.detach()
    plain = Session(None)  # the pure-Python buffer's session
    empty, _ = attached(ours, Transport())  # nothing queued: nothing to do
    for sink in (held_sink, gone_sink, loose.sink, detached_sink):
        sink.push(b"[]", 0)
    left = fanout.send_all([held, gone, loose, detached, plain, empty, object()])
    assert [(s, rest) for s, rest in left[:5]] == [
        (held, None),
        (gone, None),
        (loose, None),
        (detached, None),
        (plain, None),
    ]
    assert len(left) == 6
    assert left[5][1] is None
    assert read_all(theirs) == b""
    for sink in (held_sink, gone_sink, loose.sink, detached_sink):
        assert sink.frames == 1
        assert sink.sent == (0, 0, 0)
    assert not detached_sink.attached
    assert held_sink.attached


def test_what_a_full_socket_does_not_take_comes_back_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    assert fanout is not None
    ours, theirs = pair
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    session, sink = attached(ours, Transport())
    payloads = [b"[" + bytes([97 + i % 26]) * 5000 + b"]" for i in range(40)]
    for payload in payloads:
        sink.push(payload, 1)
    ((back, rest),) = fanout.send_all([session])
    assert back is session
    assert isinstance(rest, bytes)
    assert rest
    assert sink.frames == 0
    assert sink.sent[:2] == (40, 40)
    assert read_all(theirs) + rest == b"".join(wire(p) for p in payloads)


def test_a_broken_connection_hands_everything_back(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    assert fanout is not None
    ours, theirs = pair
    theirs.close()
    session, sink = attached(ours, Transport())
    sink.push(b'[{"ev":"T"}]', 1)
    ((_, rest),) = fanout.send_all([session])
    assert rest == wire(b'[{"ev":"T"}]')  # for the transport, which meets the error itself


def test_attach_checks_its_arguments_and_errors_propagate() -> None:
    assert fanout is not None
    sink = fanout.Sink(lambda: None)
    with pytest.raises(ValueError, match="fd"):
        sink.attach(-1, Transport())
    with pytest.raises(TypeError):
        sink.attach(3)

    class Broken(Transport):
        def is_closing(self) -> bool:
            raise RuntimeError("transport gone wrong")

    with socket.socket() as sock:
        sink.attach(sock.fileno(), Broken())
        sink.push(b"[]", 0)
        with pytest.raises(RuntimeError, match="gone wrong"):
            fanout.send_all([Session(sink)])
        assert sink.frames == 1  # nothing lost
    with pytest.raises(TypeError):
        fanout.send_all(3)


class Extra:
    """A transport's get_extra_info, from a dict."""

    def __init__(self, **info: Any) -> None:
        self.info = info

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.info.get(name, default)


def test_only_plain_sockets_are_written_directly(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    from massivekit.proxy.downstream import _socket_fd

    ours, _ = pair
    assert _socket_fd(Extra(socket=ours)) == ours.fileno()  # type: ignore[arg-type]
    # Under TLS the socket carries ciphertext: never written around the transport.
    assert _socket_fd(Extra(socket=ours, sslcontext=object())) is None  # type: ignore[arg-type]
    assert _socket_fd(Extra(socket=ours, ssl_object=object())) is None  # type: ignore[arg-type]
    assert _socket_fd(Extra()) is None  # type: ignore[arg-type]
