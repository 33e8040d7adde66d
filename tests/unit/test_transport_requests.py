"""The pending-request store, with plain concurrent futures: no event loop."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import msgspec
import pytest

from massivekit.errors import DeserializeError, RequestTimeout, TransportError
from massivekit.transport.requests import (
    PendingRequests,
    RequestFailed,
    RequestQueue,
    convert_result,
)


def test_resolve_by_id_in_any_order() -> None:
    store = PendingRequests()
    one: Future[Any] = store.add(1, Future())
    two: Future[Any] = store.add(2, Future())
    assert len(store) == 2
    assert 1 in store
    assert store.resolve(2, {"ok": True})
    assert store.resolve(1, "first")
    assert one.result() == "first"
    assert two.result() == {"ok": True}
    assert len(store) == 0
    assert not store.resolve(1, "again"), "an id is answered once"


def test_error_answers_raise_request_failed() -> None:
    store = PendingRequests()
    future: Future[Any] = store.add("a", Future())
    store.resolve("a", error={"code": -32601, "message": "no such method"})
    with pytest.raises(RequestFailed) as caught:
        future.result()
    assert caught.value.error == {"code": -32601, "message": "no such method"}


def test_capacity_limit_and_duplicates() -> None:
    store = PendingRequests(capacity=2)
    store.add(1, Future())
    store.add(2, Future())
    assert store.full
    with pytest.raises(TransportError, match="capacity 2"):
        store.add(3, Future())
    store.resolve(1)
    with pytest.raises(ValueError, match="already outstanding"):
        store.add(2, Future())
    with pytest.raises(ValueError):
        PendingRequests(capacity=0)


def test_deadlines_expire_in_order() -> None:
    store = PendingRequests()
    early: Future[Any] = store.add(1, Future(), deadline=10.0)
    late: Future[Any] = store.add(2, Future(), deadline=20.0)
    store.add(3, Future())  # no deadline: the caller times it out itself
    assert store.next_deadline() == 10.0
    assert store.expire(9.9) == 0
    assert store.expire(10.0) == 1
    with pytest.raises(RequestTimeout):
        early.result()
    assert not late.done()
    assert store.next_deadline() == 20.0
    store.resolve(2, "in time")
    assert store.next_deadline() is None, "answered requests leave the heap"
    assert store.expire(100.0) == 0
    assert store.expired == 1
    assert len(store) == 1


def test_cancel_and_answers_after_the_caller_left() -> None:
    store = PendingRequests()
    future: Future[Any] = store.add(1, Future(), deadline=5.0)
    future.cancel()
    assert store.resolve(1, "late"), "known id, caller gone: dropped quietly"
    store.add(2, Future())
    store.cancel(2)
    assert 2 not in store
    store.cancel(99)  # unknown ids are ignored


def test_fail_all_on_connection_loss() -> None:
    store = PendingRequests()
    futures: list[Future[Any]] = [store.add(i, Future(), deadline=1.0) for i in range(3)]
    done: Future[Any] = Future()
    done.set_result("x")
    store.add(9, done)
    assert store.fail_all(TransportError("lost")) == 4
    for future in futures:
        with pytest.raises(TransportError, match="lost"):
            future.result()
    assert len(store) == 0
    assert store.next_deadline() is None


class Quote(msgspec.Struct):
    bid: float
    ask: float


def test_convert_result_to_a_type() -> None:
    assert convert_result({"bid": 1.0, "ask": 2.0}, Quote) == Quote(1.0, 2.0)
    assert convert_result([1, 2], None) == [1, 2]
    with pytest.raises(DeserializeError, match="Quote"):
        convert_result({"bid": "x"}, Quote)


def test_queue_waits_then_sends_in_order() -> None:
    queue = RequestQueue(capacity=3)
    first: Future[Any] = Future()
    second: Future[Any] = Future()
    gave_up: Future[Any] = Future()
    one = queue.submit("a", 1, first)
    queue.submit("b", 2, second)
    queue.submit("c", 3, gave_up)
    gave_up.cancel()
    with pytest.raises(TransportError, match="capacity 3"):
        queue.submit("d", 4, Future())
    sent: list[tuple[str, Any]] = []

    def send(method: str, params: Any) -> int:
        sent.append((method, params))
        return len(sent)

    assert queue.send_all(send) == 2
    assert sent == [("a", 1), ("b", 2)], "in order; the abandoned one is skipped"
    assert one.request_id == 1
    assert len(queue) == 2
    queue.pending.resolve(2, "two")
    assert second.result() == "two"
    queue.withdraw(one)
    assert len(queue) == 0


def test_queue_withdraw_and_fail_waiting() -> None:
    queue = RequestQueue()
    waiting: Future[Any] = Future()
    entry = queue.submit("a", None, waiting)
    queue.withdraw(entry)
    assert len(queue) == 0
    lost: Future[Any] = Future()
    queue.submit("b", None, lost)
    done: Future[Any] = Future()
    done.set_result(None)
    queue.submit("c", None, done)
    assert queue.fail_waiting(TransportError("closed")) == 1
    with pytest.raises(TransportError):
        lost.result()
