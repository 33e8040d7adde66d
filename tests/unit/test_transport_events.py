"""Connection events and their fan-out, without running a loop."""

from __future__ import annotations

from massivekit.transport.events import ConnectionEvent, ConnectionState, EventHub, EventStream

S = ConnectionState


def event(
    state: ConnectionState, previous: ConnectionState = S.READY, **kw: object
) -> ConnectionEvent:
    return ConnectionEvent(state, previous, **kw)  # type: ignore[arg-type]


def test_event_text_says_what_happened() -> None:
    lost = event(S.RECONNECTING, attempt=3, delay=1.5, reason="dropped")
    assert str(lost) == "ready → reconnecting (attempt 3, in 1.50s): dropped"
    assert str(event(S.READY, S.AUTHENTICATING)) == "authenticating → ready"
    assert lost.at > 0


def test_stream_is_bounded_and_ends_with_closed() -> None:
    stream = EventStream(maxsize=2)
    for state in (S.CONNECTING, S.AUTHENTICATING, S.READY):
        stream.put(event(state))
    assert stream.dropped == 1, "a reader far behind loses the oldest"
    stream.put(event(S.CLOSED))
    stream.put(event(S.CONNECTING))  # nothing after CLOSED
    assert [e.state for e in stream._events] == [S.READY, S.CLOSED]


def test_hub_fans_out_and_survives_a_bad_callback() -> None:
    hub = EventHub("test")
    seen: list[ConnectionState] = []

    def broken(e: ConnectionEvent) -> None:
        raise RuntimeError("bug")

    hub.add(broken)
    hub.add(lambda e: seen.append(e.state))
    stream = hub.stream()
    hub.emit(event(S.CONNECTING))
    hub.remove(broken)
    hub.remove(broken)  # twice is harmless
    hub.emit(event(S.CLOSED))
    assert seen == [S.CONNECTING, S.CLOSED]
    assert [e.state for e in stream._events] == [S.CONNECTING, S.CLOSED]
    late = hub.stream()
    assert late._ended, "a stream asked for after CLOSED is already over"
