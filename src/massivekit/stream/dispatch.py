"""Bounded fan-out from the socket reader to the consumers of a stream.

The socket reader calls :meth:`Dispatcher.publish` once per decoded frame (a
batch of events, or a raw frame): it never blocks and never awaits, so a slow
consumer can never stall the reader, and through it the heartbeat and the
server's ``slow_consumer`` check. Each :class:`Consumer` owns a bounded buffer
and an :class:`Overflow` policy that decides what happens when it is full:

- ``DROP_OLDEST``: evict the oldest batch, keep the newest (market data goes
  stale; the latest quote is what matters);
- ``DROP_NEWEST``: discard the incoming batch, keep what is queued;
- ``ERROR_AND_CLOSE``: detach the consumer; its next ``__anext__`` raises
  :class:`~massivekit.errors.BufferOverflow` at once, without draining what it
  holds, because a consumer that must see every event is better told now than
  fed a gapped stream first.

With one consumer the dispatcher is a single-consumer queue; with several, every
consumer sees every batch (broadcast). Publishing is O(consumers): a length
check and a ``deque.append`` each, plus a wake-up only for a consumer that is
waiting. Drop counts go to the metrics hook in batches, never per event.

Everything here runs on one event loop thread; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable
from itertools import chain
from typing import Any, Generic, TypeVar, cast

from massivekit.errors import BufferOverflow
from massivekit.stream.metrics import DROPS, QUEUE_DEPTH, MetricsHook, NoopHook

__all__ = ["Consumer", "Dispatcher", "Overflow"]

T = TypeVar("T")

#: Pending drops are reported to the metrics hook at least this often (in
#: drops), so a consumer that never catches up still shows in the metrics.
DROP_REPORT_EVERY = 1024


class Overflow(enum.Enum):
    """What a consumer's full buffer does with one more batch."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    ERROR_AND_CLOSE = "error_and_close"


class Consumer(Generic[T]):
    """One consumer's bounded buffer; an async iterator of published items.

    Made by :meth:`Dispatcher.consumer`. Iterate it with ``async for``; it ends
    (``StopAsyncIteration``) once the dispatcher is closed and the buffer is
    drained, or raises the error the dispatcher was closed with.

    Attributes:
        name: a label for metrics and logs.
        drops: items this consumer lost to its overflow policy.
    """

    __slots__ = (
        "_buf",
        "_closed",
        "_coalesce",
        "_error",
        "_failed",
        "_maxsize",
        "_metrics",
        "_on_detach",
        "_overflow",
        "_reported_drops",
        "_waiter",
        "drops",
        "name",
    )

    def __init__(
        self,
        *,
        maxsize: int,
        overflow: Overflow,
        name: str,
        metrics: MetricsHook,
        on_detach: Callable[[Consumer[T]], None],
        coalesce: bool = False,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self.name = name
        self._coalesce = coalesce
        self.drops = 0
        self._buf: deque[T] = deque()
        self._maxsize = maxsize
        self._overflow = overflow
        self._metrics = metrics
        self._on_detach = on_detach
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False  # no more items will come
        self._failed = False  # overflowed under ERROR_AND_CLOSE, not yet raised
        self._error: BaseException | None = None
        self._reported_drops = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"Consumer(name={self.name!r}, {state}, qsize={len(self._buf)}, "
            f"maxsize={self._maxsize}, overflow={self._overflow.value}, drops={self.drops})"
        )

    @property
    def maxsize(self) -> int:
        """The buffer's capacity, in published items."""
        return self._maxsize

    @property
    def overflow(self) -> Overflow:
        """This consumer's overflow policy."""
        return self._overflow

    @property
    def closed(self) -> bool:
        """True once no more items will be put in this buffer."""
        return self._closed

    def qsize(self) -> int:
        """The number of items buffered and not yet consumed."""
        return len(self._buf)

    def get_nowait(self) -> T | None:
        """The oldest buffered item, or ``None`` when the buffer is empty.

        Lets a consumer that was woken drain a burst without one await per item.

        Raises:
            BufferOverflow: the buffer overflowed under ``ERROR_AND_CLOSE``.
        """
        if self._buf:
            return self._buf.popleft()
        if self._failed:
            self._raise_overflow()
        return None

    def close(self) -> None:
        """Stop consuming: detach from the dispatcher and discard the buffer.

        Iteration then ends at once; a task waiting in ``__anext__`` is woken.
        """
        self._buf.clear()
        self._failed = False
        self._finish(None)
        self._on_detach(self)

    def __aiter__(self) -> Consumer[T]:
        return self

    async def __anext__(self) -> T:
        """The next item, waiting for one if the buffer is empty.

        Raises:
            BufferOverflow: the buffer overflowed under ``ERROR_AND_CLOSE``
                (raised once, at the next call, before any buffered item).
            StopAsyncIteration: the stream is closed and the buffer drained.
            BaseException: the error the dispatcher was closed with, once drained.
        """
        while True:
            buf = self._buf
            if buf:  # the hot path; a failed consumer's buffer is always empty
                if self._coalesce and len(buf) > 1:
                    return self._join()
                return buf.popleft()
            if self._failed:
                self._raise_overflow()
            if self._closed:
                self._raise_end()
            await self._wait()

    def _join(self) -> T:
        """Every buffered list as one list, in order (``coalesce``)."""
        buf = self._buf
        joined: list[Any] = list(chain.from_iterable(cast(deque[list[Any]], buf)))
        buf.clear()
        return cast(T, joined)

    async def get_batch(self, max_items: int | None = None) -> list[T]:
        """Every buffered item at once (oldest first), waiting for one if there is none.

        One wake-up then hands over all that arrived meanwhile, so a consumer
        pays the cost of an ``await`` per burst rather than per item.

        Args:
            max_items: return at most this many (the oldest); all if ``None``.

        Returns:
            At least one item; an empty list once the stream ended normally
            (closed and drained).

        Raises:
            BufferOverflow: the buffer overflowed under ``ERROR_AND_CLOSE``.
            BaseException: the error the dispatcher was closed with, once drained.
        """
        while True:
            buf = self._buf
            if buf:
                if max_items is None or len(buf) <= max_items:
                    items = list(buf)
                    buf.clear()
                    return items
                return [buf.popleft() for _ in range(max(1, max_items))]
            if self._failed:
                self._raise_overflow()
            if self._closed:
                try:
                    self._raise_end()
                except StopAsyncIteration:
                    return []
            await self._wait()

    async def _wait(self) -> None:
        """Sleep until the publisher puts an item or the stream ends."""
        # Why a bare future: the publisher wakes it only when it exists, so a
        # consumer that keeps up costs the publisher nothing but the append.
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    # -- called by the dispatcher ------------------------------------------

    def _put(self, item: T) -> None:
        """Buffer ``item`` under this consumer's policy; never blocks."""
        buf = self._buf
        if len(buf) < self._maxsize:
            buf.append(item)
        elif not self._overflowed(item):
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None  # woken once: later puts skip this
            if not waiter.done():
                waiter.set_result(None)

    def _put_many(self, items: list[T]) -> None:
        """Buffer ``items`` in order under this consumer's policy, as if put one by one."""
        buf = self._buf
        room = self._maxsize - len(buf)
        if len(items) <= room:
            buf.extend(items)
        elif self._overflow is Overflow.DROP_OLDEST:
            buf.extend(items)
            excess = len(buf) - self._maxsize
            for _ in range(excess):
                buf.popleft()
            self._dropped(excess)
        elif self._overflow is Overflow.DROP_NEWEST:
            buf.extend(items[: max(room, 0)])
            self._dropped(len(items) - max(room, 0))
        else:
            self._overflowed(items[0])  # ERROR_AND_CLOSE: the first that does not fit
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _dropped(self, count: int) -> None:
        self.drops += count
        if self.drops - self._reported_drops >= DROP_REPORT_EVERY:
            self.report()

    def _overflowed(self, item: T) -> bool:
        """Apply the policy to a full buffer; True if a waiter should be woken."""
        self.drops += 1
        if self._overflow is Overflow.DROP_OLDEST:
            self._buf.popleft()
            self._buf.append(item)
        elif self._overflow is Overflow.ERROR_AND_CLOSE:
            self._failed = True
            self._buf.clear()
            self._finish(None)
            self._on_detach(self)
            return True
        if self.drops - self._reported_drops >= DROP_REPORT_EVERY:
            self.report()
        return False

    def _finish(self, error: BaseException | None) -> None:
        """No more items: remember why, report, and wake a waiting task."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self.report()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def report(self) -> None:
        """Send this consumer's new drops and its queue depth to the metrics hook."""
        new = self.drops - self._reported_drops
        if new:
            self._reported_drops = self.drops
            self._metrics.counter(DROPS, float(new), consumer=self.name)
        self._metrics.gauge(QUEUE_DEPTH, float(len(self._buf)), consumer=self.name)

    def _raise_overflow(self) -> None:
        self._failed = False
        raise BufferOverflow(
            f"consumer {self.name or '(unnamed)'} fell behind: its buffer of "
            f"{self._maxsize} items filled under the error_and_close policy"
        )

    def _raise_end(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
        raise StopAsyncIteration


class Dispatcher(Generic[T]):
    """Publishes items to every attached :class:`Consumer`, each with its own buffer.

    Args:
        maxsize: default buffer capacity of a consumer, in published items.
        overflow: default overflow policy of a consumer.
        metrics: where drop counts and queue depths go; a no-op by default.
        coalesce: items are lists, and a consumer's ``__anext__`` returns every
            list buffered at that moment joined into one (in order), so a
            consumer that was away pays one iteration per wake-up, not one
            per item. Buffer capacity and drops still count published lists.

    Raises:
        ValueError: ``maxsize`` is below 1.
    """

    def __init__(
        self,
        *,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.DROP_OLDEST,
        metrics: MetricsHook | None = None,
        coalesce: bool = False,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._coalesce = coalesce
        self._maxsize = maxsize
        self._overflow = overflow
        self._metrics: MetricsHook = metrics if metrics is not None else NoopHook()
        self._consumers: list[Consumer[T]] = []
        # The hot path iterates a tuple of bound methods: no attribute lookups
        # and no list mutation hazards while a put detaches its consumer.
        self._puts: tuple[Callable[[T], None], ...] = ()
        self._put_manys: tuple[Callable[[list[T]], None], ...] = ()
        self.publish = self._publish_none
        self.publish_many = self._publish_many_none
        self._closed = False
        self._error: BaseException | None = None
        self._detached_drops = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Dispatcher({state}, consumers={len(self._consumers)}, drops={self.drops})"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def drops(self) -> int:
        """Items lost to overflow policies, summed over every consumer ever attached."""
        return self._detached_drops + sum(c.drops for c in self._consumers)

    @property
    def consumers(self) -> tuple[Consumer[T], ...]:
        """The consumers attached now."""
        return tuple(self._consumers)

    publish: Callable[[T], None]
    """Hand an item to every consumer under its policy; never blocks or awaits.

    Items published after :meth:`close`, or with no consumer attached, are
    discarded (and not counted as drops: nobody was there to lose them).
    Why an attribute: with one consumer it *is* that consumer's put, which
    saves a call per item on the socket reader's path. So look it up at each
    call (``dispatcher.publish(item)``); a copy taken before consumers are
    added or removed keeps reaching the old set.
    """

    publish_many: Callable[[list[T]], None]
    """:attr:`publish` for several items at once, in order (one call per consumer).

    The same policies, applied as if each item were published alone. The list
    is copied into the buffers: the caller may reuse it. Look it up at each
    call, as :attr:`publish`.
    """

    def _publish_all(self, item: T) -> None:
        for put in self._puts:
            put(item)

    def _publish_none(self, item: T) -> None:
        pass

    def _publish_many_all(self, items: list[T]) -> None:
        for put_many in self._put_manys:
            put_many(items)

    def _publish_many_none(self, items: list[T]) -> None:
        pass

    def _rebind(self) -> None:
        """Point :attr:`publish` at the cheapest correct way to reach the consumers."""
        self._puts = tuple(c._put for c in self._consumers)
        self._put_manys = tuple(c._put_many for c in self._consumers)
        if self._closed or not self._puts:
            self.publish = self._publish_none
            self.publish_many = self._publish_many_none
        elif len(self._puts) == 1:
            self.publish = self._puts[0]
            self.publish_many = self._put_manys[0]
        else:
            self.publish = self._publish_all
            self.publish_many = self._publish_many_all

    def consumer(
        self, *, maxsize: int | None = None, overflow: Overflow | None = None, name: str = ""
    ) -> Consumer[T]:
        """Attach a new consumer; it sees every item published from now on.

        Args:
            maxsize: its buffer capacity; the dispatcher's default if ``None``.
            overflow: its overflow policy; the dispatcher's default if ``None``.
            name: a label for metrics and logs.

        Returns:
            The consumer, an async iterator. On a closed dispatcher it is already
            closed (it ends at once, or raises the close error).

        Raises:
            ValueError: ``maxsize`` is below 1.
        """
        consumer: Consumer[T] = Consumer(
            maxsize=self._maxsize if maxsize is None else maxsize,
            overflow=self._overflow if overflow is None else overflow,
            name=name,
            metrics=self._metrics,
            on_detach=self._detach,
            coalesce=self._coalesce,
        )
        if self._closed:
            consumer._finish(self._error)
        else:
            self._consumers.append(consumer)
            self._rebind()
        return consumer

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: consumers drain what they hold, then stop.

        Args:
            error: raised by each consumer once drained instead of ending
                normally (e.g. the terminal error of the connection).
        """
        if self._closed:
            return
        self._closed = True
        self._error = error
        for consumer in tuple(self._consumers):
            consumer._finish(error)
        self._rebind()

    def report(self) -> None:
        """Send every consumer's new drops and queue depth to the metrics hook.

        Drops are also reported on close and every ``DROP_REPORT_EVERY`` drops;
        call this from a periodic timer for up-to-date gauges.
        """
        for consumer in self._consumers:
            consumer.report()

    def _detach(self, consumer: Consumer[T]) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
            self._detached_drops += consumer.drops
            self._rebind()
