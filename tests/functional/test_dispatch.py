"""Dispatcher and consumers on a running loop: waiting, waking, slow consumers."""

from __future__ import annotations

import asyncio

import pytest

from massivekit.errors import BufferOverflow, StreamClosed
from massivekit.stream.dispatch import Consumer, Dispatcher, Overflow

WITHIN = 5.0


async def collect(consumer: Consumer[int]) -> list[int]:
    return [item async for item in consumer]


async def test_waiting_consumer_is_woken_by_publish() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        waiting = asyncio.create_task(anext(consumer))
        await asyncio.sleep(0)  # let it reach its wait: nothing to take yet
        assert not waiting.done()
        dispatcher.publish(42)
        assert await waiting == 42


async def test_close_ends_iteration_after_the_buffer() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        reader = asyncio.create_task(collect(consumer))
        for i in range(3):
            dispatcher.publish(i)
        dispatcher.close()
        assert await reader == [0, 1, 2]


async def test_close_with_error_wakes_a_waiting_consumer() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        reader = asyncio.create_task(collect(consumer))
        await asyncio.sleep(0)
        dispatcher.close(StreamClosed("terminal"))
        with pytest.raises(StreamClosed, match="terminal"):
            await reader


async def test_consumer_close_wakes_its_own_waiter() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        reader = asyncio.create_task(collect(consumer))
        await asyncio.sleep(0)
        consumer.close()
        assert await reader == []


async def test_a_cancelled_wait_leaves_the_consumer_usable() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        waiting = asyncio.create_task(anext(consumer))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        dispatcher.publish(7)
        assert await anext(consumer) == 7


async def test_broadcast_to_concurrent_readers() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=1_000)
    consumers = [dispatcher.consumer(name=f"c{i}") for i in range(3)]
    async with asyncio.timeout(WITHIN), asyncio.TaskGroup() as group:
        readers = [group.create_task(collect(c)) for c in consumers]
        for i in range(500):
            dispatcher.publish(i)
            if i % 50 == 0:
                await asyncio.sleep(0)  # interleave publishing and reading
        dispatcher.close()
    for reader in readers:
        assert reader.result() == list(range(500))


class Gate:
    """Holds a slow consumer until the publisher has flooded it."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.first = asyncio.Event()


async def slow_reader(consumer: Consumer[int], gate: Gate) -> list[int]:
    seen: list[int] = []
    async for item in consumer:
        seen.append(item)
        gate.first.set()
        await gate.open.wait()
    return seen


async def flood_slow_consumer(overflow: Overflow) -> tuple[list[int], list[int], Consumer[int]]:
    """One fast and one slow consumer; the publisher never waits on either."""
    dispatcher: Dispatcher[int] = Dispatcher(maxsize=1_000)
    fast = dispatcher.consumer(name="fast")
    slow = dispatcher.consumer(name="slow", maxsize=4, overflow=overflow)
    gate = Gate()
    async with asyncio.timeout(WITHIN):
        fast_task = asyncio.create_task(collect(fast))
        slow_task = asyncio.create_task(slow_reader(slow, gate))
        dispatcher.publish(0)
        await gate.first.wait()  # the slow reader holds item 0 and is stuck
        for i in range(1, 100):
            dispatcher.publish(i)  # never blocks, whatever the slow one does
        gate.open.set()
        dispatcher.close()
        fast_seen = await fast_task
        try:
            slow_seen = await slow_task
        except BufferOverflow:
            slow_seen = []
    return fast_seen, slow_seen, slow


async def test_slow_consumer_drop_oldest() -> None:
    fast, slow, consumer = await flood_slow_consumer(Overflow.DROP_OLDEST)
    assert fast == list(range(100))
    assert slow == [0, 96, 97, 98, 99]
    assert consumer.drops == 95


async def test_slow_consumer_drop_newest() -> None:
    fast, slow, consumer = await flood_slow_consumer(Overflow.DROP_NEWEST)
    assert fast == list(range(100))
    assert slow == [0, 1, 2, 3, 4]
    assert consumer.drops == 95


async def test_slow_consumer_error_and_close() -> None:
    fast, slow, consumer = await flood_slow_consumer(Overflow.ERROR_AND_CLOSE)
    assert fast == list(range(100))
    assert slow == []  # it raised BufferOverflow at its next step
    assert consumer.drops == 1
    assert consumer.closed


async def test_get_batch_waits_then_hands_over_a_burst() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        waiting = asyncio.create_task(consumer.get_batch())
        await asyncio.sleep(0)  # let it reach its wait
        assert not waiting.done()
        for i in range(3):
            dispatcher.publish(i)  # one wake-up for the three
        assert await waiting == [0, 1, 2]
        ending = asyncio.create_task(consumer.get_batch())
        await asyncio.sleep(0)
        dispatcher.close()
        assert await ending == []


async def test_coalescing_joins_what_was_buffered_in_order() -> None:
    dispatcher: Dispatcher[list[int]] = Dispatcher(maxsize=3, coalesce=True)
    first = dispatcher.consumer()
    second = dispatcher.consumer()
    batches = [[1, 2], [3], [4, 5], [6]]
    for batch in batches:
        dispatcher.publish(batch)
    async with asyncio.timeout(WITHIN):
        # Capacity and drops count published lists: [1, 2] was the oldest of four.
        assert await anext(first) == [3, 4, 5, 6]
        assert first.drops == 1
        assert await anext(second) == [3, 4, 5, 6], "each consumer gets its own joined list"
        assert batches[1] == [3], "the published lists are not modified"
        lone = [7]
        dispatcher.publish(lone)
        assert await anext(first) is lone, "a lone list is handed over as it is"


async def test_without_coalescing_each_list_is_an_item() -> None:
    dispatcher: Dispatcher[list[int]] = Dispatcher()
    consumer = dispatcher.consumer()
    dispatcher.publish([1])
    dispatcher.publish([2])
    async with asyncio.timeout(WITHIN):
        assert await anext(consumer) == [1]
        assert await anext(consumer) == [2]


@pytest.mark.parametrize("overflow", list(Overflow))
@pytest.mark.parametrize("held", [0, 2, 4])
@pytest.mark.parametrize("count", [1, 3, 6])
async def test_publish_many_is_publish_one_by_one(
    overflow: Overflow, held: int, count: int
) -> None:
    def outcome(many: bool) -> tuple[list[int], int, bool]:
        dispatcher: Dispatcher[int] = Dispatcher(maxsize=4, overflow=overflow)
        consumer = dispatcher.consumer()
        for i in range(held):
            dispatcher.publish(i)
        items = list(range(100, 100 + count))
        if many:
            dispatcher.publish_many(items)
        else:
            for item in items:
                dispatcher.publish(item)
        got: list[int] = []
        failed = False
        try:
            while (item := consumer.get_nowait()) is not None:
                got.append(item)
        except BufferOverflow:
            failed = True
        return got, consumer.drops, failed

    assert outcome(many=True) == outcome(many=False)


async def test_publish_many_wakes_a_waiting_consumer_once() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    consumer = dispatcher.consumer()
    async with asyncio.timeout(WITHIN):
        waiting = asyncio.create_task(consumer.get_batch())
        await asyncio.sleep(0)  # let it reach its wait
        dispatcher.publish_many([1, 2, 3])
        assert await waiting == [1, 2, 3]
        dispatcher.close()
        dispatcher.publish_many([4])  # after close: discarded
        assert await consumer.get_batch() == []


async def test_publish_many_reaches_every_consumer() -> None:
    dispatcher: Dispatcher[int] = Dispatcher()
    first, second = dispatcher.consumer(), dispatcher.consumer()
    dispatcher.publish_many([1, 2])
    async with asyncio.timeout(WITHIN):
        assert await first.get_batch() == [1, 2]
        assert await second.get_batch() == [1, 2]
