"""Request/response correlation: pending requests by id, with deadlines and a cap.

A protocol that answers requests by id (JSON-RPC, most exchange APIs) needs
a table of what is outstanding: :class:`PendingRequests` holds one future
per id, each with its own deadline, refuses new requests past a capacity
(so a dead peer cannot make memory grow without bound), and fails everything
at once when the connection goes.

The store never reads a clock, starts a timer or makes a future itself: the
caller hands in the future (an ``asyncio.Future``, or any object with the
same ``done``/``set_result``/``set_exception`` methods, such as
``concurrent.futures.Future``) and calls :meth:`PendingRequests.expire`
with the time when :meth:`PendingRequests.next_deadline` comes, so the
logic is tested without an event loop.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgspec

from massivekit.errors import (
    ApiError,
    DeserializeError,
    MassiveError,
    RequestTimeout,
    TransportError,
)

__all__ = ["PendingRequests", "QueuedRequest", "RequestFailed", "RequestQueue", "convert_result"]


class Settable(Protocol):
    """What the store needs of a future (``asyncio.Future``, ``concurrent.futures.Future``)."""

    def done(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


F = TypeVar("F", bound=Settable)


class RequestFailed(ApiError):
    """The peer answered a request with an error; ``error`` holds what it said."""

    def __init__(self, message: str, *, error: Any = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(order=True, slots=True)
class _Deadline:
    when: float
    request_id: Hashable = field(compare=False)


class PendingRequests:
    """Outstanding requests, their futures and deadlines.

    Args:
        capacity: the most requests outstanding at once.
    """

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._futures: dict[Hashable, Settable] = {}
        self._deadlines: list[_Deadline] = []
        self.expired = 0
        """Requests that ran out of time, since the store was made."""

    def __len__(self) -> int:
        return len(self._futures)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._futures

    @property
    def full(self) -> bool:
        """Whether a new request would exceed the capacity."""
        return len(self._futures) >= self.capacity

    def add(self, request_id: Hashable, future: F, deadline: float | None = None) -> F:
        """Track a new request; ``future`` is settled with its answer.

        Args:
            request_id: the id the answer will carry.
            future: settled with the result, a :class:`RequestFailed`, a
                :class:`~massivekit.errors.RequestTimeout` or the error of
                :meth:`fail_all`.
            deadline: the time (on the caller's clock) after which :meth:`expire`
                fails it; ``None`` when the caller enforces its own timeout.

        Returns:
            ``future``.

        Raises:
            TransportError: the store is full.
            ValueError: ``request_id`` is already outstanding.
        """
        if self.full:
            raise TransportError(f"too many requests outstanding (capacity {self.capacity})")
        if request_id in self._futures:
            raise ValueError(f"request id {request_id!r} is already outstanding")
        self._futures[request_id] = future
        if deadline is not None:
            heapq.heappush(self._deadlines, _Deadline(deadline, request_id))
        return future

    def resolve(self, request_id: Hashable, result: Any = None, error: Any = None) -> bool:
        """Settle ``request_id`` with its answer; ``False`` if it is not outstanding.

        An ``error`` fails the future with :class:`RequestFailed`.
        """
        future = self._futures.pop(request_id, None)
        if future is None:
            return False
        if future.done():  # the caller gave up (cancelled) before the answer came
            return True
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(RequestFailed(f"request {request_id!r} failed", error=error))
        return True

    def cancel(self, request_id: Hashable) -> None:
        """Forget ``request_id`` (its caller stopped waiting)."""
        self._futures.pop(request_id, None)

    def next_deadline(self) -> float | None:
        """The earliest deadline of an outstanding request, if any."""
        self._prune()
        return self._deadlines[0].when if self._deadlines else None

    def expire(self, now: float) -> int:
        """Fail every request whose deadline is at or before ``now``; returns how many."""
        count = 0
        while self._deadlines and self._deadlines[0].when <= now:
            entry = heapq.heappop(self._deadlines)
            future = self._futures.pop(entry.request_id, None)
            if future is None:
                continue
            count += 1
            if not future.done():
                future.set_exception(RequestTimeout(f"request {entry.request_id!r} timed out"))
        self.expired += count
        return count

    def fail_all(self, error: MassiveError) -> int:
        """Fail every outstanding request with ``error`` (the connection is gone)."""
        futures = list(self._futures.values())
        self._futures.clear()
        self._deadlines.clear()
        for future in futures:
            if not future.done():
                future.set_exception(error)
        return len(futures)

    def _prune(self) -> None:
        # Deadlines of requests already answered linger in the heap until they surface.
        while self._deadlines and self._deadlines[0].request_id not in self._futures:
            heapq.heappop(self._deadlines)


@dataclass(eq=False, slots=True)
class QueuedRequest:
    """A request a caller made; ``request_id`` is set once it is sent."""

    method: str
    params: Any
    future: Settable
    request_id: Hashable | None = None


class RequestQueue:
    """Requests waiting for a session, then in flight: one bound for both.

    While no session can take requests they wait here, in order; when one
    is READY, :meth:`send_all` hands them to it and tracks their ids in
    :attr:`pending`.

    Args:
        capacity: the most requests waiting and in flight together.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.pending = PendingRequests(capacity)
        self.capacity = capacity
        self._waiting: deque[QueuedRequest] = deque()

    def __len__(self) -> int:
        return len(self.pending) + len(self._waiting)

    def submit(self, method: str, params: Any, future: Settable) -> QueuedRequest:
        """Queue a request; ``future`` gets its answer.

        Raises:
            TransportError: ``capacity`` requests are waiting or in flight.
        """
        if len(self) >= self.capacity:
            raise TransportError(f"too many requests outstanding (capacity {self.capacity})")
        entry = QueuedRequest(method, params, future)
        self._waiting.append(entry)
        return entry

    def send_all(self, send: Callable[[str, Any], Hashable]) -> int:
        """Send every waiting request with ``send(method, params) -> id``; returns how many."""
        sent = 0
        while self._waiting:
            entry = self._waiting.popleft()
            if entry.future.done():
                continue  # its caller gave up while it waited
            entry.request_id = send(entry.method, entry.params)
            self.pending.add(entry.request_id, entry.future)
            sent += 1
        return sent

    def withdraw(self, entry: QueuedRequest) -> None:
        """Forget ``entry``, waiting or in flight (its caller stopped waiting)."""
        if entry in self._waiting:
            self._waiting.remove(entry)
        if entry.request_id is not None:
            self.pending.cancel(entry.request_id)

    def fail_waiting(self, error: BaseException) -> int:
        """Fail the requests not yet sent (the connection ended for good)."""
        count = 0
        while self._waiting:
            future = self._waiting.popleft().future
            if not future.done():
                future.set_exception(error)
                count += 1
        return count


def convert_result(result: Any, result_type: type[Any] | None) -> Any:
    """Convert a decoded JSON ``result`` into ``result_type`` (a Struct, dataclass, ...).

    Raises:
        DeserializeError: the result does not fit the type.
    """
    if result_type is None:
        return result
    try:
        return msgspec.convert(result, type=result_type)
    except msgspec.ValidationError as exc:
        raise DeserializeError(f"result does not fit {result_type.__name__}: {exc}") from exc
