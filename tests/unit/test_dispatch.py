"""Dispatcher and consumers without an event loop.

A consumer's ``__anext__`` does not suspend while it has an item (or an end
to report), so these tests step the coroutine by hand: no loop is needed for
anything but waiting, which tests/functional/test_dispatch.py covers.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from massivekit.errors import BufferOverflow, StreamClosed
from massivekit.stream.dispatch import DROP_REPORT_EVERY, Consumer, Dispatcher, Overflow
from massivekit.stream.metrics import DROPS, QUEUE_DEPTH, RecordingHook

T = TypeVar("T")


def next_now(consumer: Consumer[T]) -> T:
    """Run ``__anext__`` to completion; it must not need to wait."""
    coro = consumer.__anext__()
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("__anext__ would have waited")


def drain(consumer: Consumer[T]) -> list[T]:
    items: list[T] = []
    while consumer.qsize():
        items.append(next_now(consumer))
    return items


def test_single_consumer_gets_items_in_order() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=10)
    consumer = dispatcher.consumer(name="only")
    for i in range(5):
        dispatcher.publish(i)
    assert consumer.qsize() == 5
    assert drain(consumer) == [0, 1, 2, 3, 4]
    assert dispatcher.drops == 0


def test_publish_without_consumers_is_a_no_op() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    dispatcher.publish(1)
    assert dispatcher.drops == 0
    consumer = dispatcher.consumer()
    assert consumer.qsize() == 0  # it sees only what is published after it joined


def test_broadcast_every_consumer_sees_every_item() -> None:
    dispatcher: Dispatcher[str] = Dispatcher(maxsize=10)
    a, b = dispatcher.consumer(name="a"), dispatcher.consumer(name="b")
    for item in "xyz":
        dispatcher.publish(item)
    assert drain(a) == ["x", "y", "z"]
    assert drain(b) == ["x", "y", "z"]
    assert dispatcher.consumers == (a, b)


def test_drop_oldest_keeps_the_newest() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=3, overflow=Overflow.DROP_OLDEST)
    consumer = dispatcher.consumer()
    for i in range(7):
        dispatcher.publish(i)
    assert drain(consumer) == [4, 5, 6]
    assert consumer.drops == 4
    assert dispatcher.drops == 4


def test_drop_newest_keeps_what_is_queued() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=3, overflow=Overflow.DROP_NEWEST)
    consumer = dispatcher.consumer()
    for i in range(7):
        dispatcher.publish(i)
    assert drain(consumer) == [0, 1, 2]
    assert consumer.drops == 4


def test_error_and_close_raises_at_once_then_ends() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=2, overflow=Overflow.ERROR_AND_CLOSE)
    consumer = dispatcher.consumer(name="strict")
    for i in range(3):
        dispatcher.publish(i)
    assert consumer.closed
    assert consumer.drops == 1
    assert dispatcher.consumers == ()  # detached: publishing no longer touches it
    dispatcher.publish(99)
    with pytest.raises(BufferOverflow, match="strict") as info:
        next_now(consumer)
    assert isinstance(info.value, StreamClosed)
    with pytest.raises(StopAsyncIteration):
        next_now(consumer)
    assert dispatcher.drops == 1  # a detached consumer's drops still count


def test_get_nowait_raises_overflow_too() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=1, overflow=Overflow.ERROR_AND_CLOSE)
    consumer = dispatcher.consumer()
    dispatcher.publish(1)
    assert consumer.get_nowait() == 1
    assert consumer.get_nowait() is None
    dispatcher.publish(2)
    dispatcher.publish(3)
    with pytest.raises(BufferOverflow):
        consumer.get_nowait()
    assert consumer.get_nowait() is None


def test_per_consumer_policies_are_independent() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=100)
    fast = dispatcher.consumer(name="fast")
    slow = dispatcher.consumer(name="slow", maxsize=2, overflow=Overflow.DROP_NEWEST)
    strict = dispatcher.consumer(name="strict", maxsize=2, overflow=Overflow.ERROR_AND_CLOSE)
    for i in range(5):
        dispatcher.publish(i)
    assert drain(fast) == [0, 1, 2, 3, 4]
    assert drain(slow) == [0, 1]
    assert strict.closed
    assert (fast.drops, slow.drops, strict.drops) == (0, 3, 1)
    assert dispatcher.drops == 4
    assert dispatcher.consumers == (fast, slow)


def test_close_lets_consumers_drain_then_stop() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    dispatcher.publish(1)
    dispatcher.publish(2)
    dispatcher.close()
    dispatcher.publish(3)  # ignored after close
    assert dispatcher.closed
    assert next_now(consumer) == 1
    assert next_now(consumer) == 2
    with pytest.raises(StopAsyncIteration):
        next_now(consumer)
    with pytest.raises(StopAsyncIteration):
        next_now(consumer)


def test_close_with_error_raises_it_after_draining_once() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    dispatcher.publish(1)
    boom = StreamClosed("auth failed for good")
    dispatcher.close(boom)
    dispatcher.close()  # idempotent: the first error stands
    assert next_now(consumer) == 1
    with pytest.raises(StreamClosed) as info:
        next_now(consumer)
    assert info.value is boom
    with pytest.raises(StopAsyncIteration):
        next_now(consumer)


def test_consumer_made_after_close_is_already_closed() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    dispatcher.close(StreamClosed("gone"))
    late = dispatcher.consumer()
    assert late.closed
    with pytest.raises(StreamClosed, match="gone"):
        next_now(late)


def test_consumer_close_discards_and_detaches() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=2, overflow=Overflow.DROP_OLDEST)
    consumer = dispatcher.consumer()
    other = dispatcher.consumer()
    for i in range(3):
        dispatcher.publish(i)
    consumer.close()
    assert consumer.qsize() == 0
    assert dispatcher.consumers == (other,)
    with pytest.raises(StopAsyncIteration):
        next_now(consumer)
    dispatcher.publish(9)
    assert consumer.qsize() == 0
    assert (other.drops, dispatcher.drops) == (2, 3)  # the closed consumer's drop still counts
    consumer.close()  # idempotent


def test_defaults_and_overrides() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=5, overflow=Overflow.DROP_NEWEST)
    default = dispatcher.consumer()
    custom = dispatcher.consumer(maxsize=1, overflow=Overflow.ERROR_AND_CLOSE, name="c")
    assert (default.maxsize, default.overflow) == (5, Overflow.DROP_NEWEST)
    assert (custom.maxsize, custom.overflow, custom.name) == (1, Overflow.ERROR_AND_CLOSE, "c")
    assert "drop_newest" in repr(default)
    assert "Dispatcher(open" in repr(dispatcher)


@pytest.mark.parametrize("size", [0, -1])
def test_maxsize_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Dispatcher(maxsize=size)
    with pytest.raises(ValueError, match="maxsize"):
        Dispatcher[int]().consumer(maxsize=size)


def test_overflow_values_are_stable() -> None:
    assert [o.value for o in Overflow] == ["drop_oldest", "drop_newest", "error_and_close"]


def test_drops_reach_the_metrics_hook_in_batches() -> None:
    hook = RecordingHook()
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=1, metrics=hook)
    consumer = dispatcher.consumer(name="slow")
    published = 3 * DROP_REPORT_EVERY + 10
    for i in range(published):
        dispatcher.publish(i)
    # One hook call per DROP_REPORT_EVERY drops, not one per drop.
    assert hook.calls == 2 * 3
    assert hook.total(DROPS, consumer="slow") == 3 * DROP_REPORT_EVERY
    dispatcher.report()
    assert hook.total(DROPS, consumer="slow") == consumer.drops == published - 1
    assert hook.gauges[(QUEUE_DEPTH, (("consumer", "slow"),))] == 1.0
    dispatcher.report()  # nothing new: only the gauge
    assert hook.total(DROPS) == published - 1


def test_close_reports_pending_drops() -> None:
    hook = RecordingHook()
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=1, overflow=Overflow.DROP_NEWEST, metrics=hook)
    dispatcher.consumer(name="c")
    for i in range(4):
        dispatcher.publish(i)
    assert hook.total(DROPS) == 0
    dispatcher.close()
    assert hook.total(DROPS, consumer="c") == 3


def test_error_and_close_reports_its_drop() -> None:
    hook = RecordingHook()
    dispatcher: Dispatcher[Any] = Dispatcher(
        maxsize=1, overflow=Overflow.ERROR_AND_CLOSE, metrics=hook
    )
    dispatcher.consumer(name="strict")
    dispatcher.publish(1)
    dispatcher.publish(2)
    assert hook.total(DROPS, consumer="strict") == 1


def batch_now(consumer: Consumer[T], max_items: int | None = None) -> list[T]:
    """Run ``get_batch`` to completion; it must not need to wait."""
    coro = consumer.get_batch(max_items)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("get_batch would have waited")


def test_get_batch_takes_everything_buffered() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    for i in range(5):
        dispatcher.publish(i)
    assert batch_now(consumer, max_items=2) == [0, 1]
    assert batch_now(consumer) == [2, 3, 4]
    assert consumer.qsize() == 0
    dispatcher.publish(5)
    assert batch_now(consumer, max_items=0) == [5]  # at least one, whatever the cap


def test_get_batch_at_the_end() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    dispatcher.publish(1)
    dispatcher.close()
    assert batch_now(consumer) == [1]
    assert batch_now(consumer) == []  # ended normally
    failing: Dispatcher[int] = Dispatcher()
    other = failing.consumer()
    failing.close(StreamClosed("gone"))
    with pytest.raises(StreamClosed, match="gone"):
        batch_now(other)


def test_get_batch_raises_overflow() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=1, overflow=Overflow.ERROR_AND_CLOSE)
    consumer = dispatcher.consumer()
    dispatcher.publish(1)
    dispatcher.publish(2)
    with pytest.raises(BufferOverflow):
        batch_now(consumer)
    assert batch_now(consumer) == []
