"""The proxy's write scheduler: at once when idle, rounds spaced under load."""

from __future__ import annotations

import asyncio
import time

from massivekit.proxy.downstream import Flusher

WITHIN = 5.0


class Rounds:
    """Loop times of a flusher's rounds, awaitable."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._changed = asyncio.Event()

    def __call__(self, seconds: float) -> None:
        self.times.append(asyncio.get_running_loop().time())
        self._changed.set()

    async def next(self) -> None:
        self._changed.clear()
        async with asyncio.timeout(WITHIN):
            await self._changed.wait()


async def test_an_idle_flusher_writes_at_once() -> None:
    rounds = Rounds()
    flusher = Flusher(rounds, interval=3600.0)
    flusher.note_received()
    flusher.schedule()
    flusher.schedule()  # one round for both
    await rounds.next()  # not an hour later: the first round is never held back
    assert flusher.rounds == 1
    flusher.close()


async def test_rounds_under_load_are_spaced_by_the_interval() -> None:
    rounds = Rounds()
    interval = 0.05
    flusher = Flusher(rounds, interval=interval)
    for _ in range(3):
        flusher.note_received()
        flusher.schedule()
        await rounds.next()
    first, second, third = rounds.times
    assert second - first >= interval * 0.99
    assert third - second >= interval * 0.99
    flusher.close()


class SlowSession:
    """Stands for a client whose write takes ``seconds`` (as 1,000 kernel writes do)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.queued = 1

    def write(self) -> bool:
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:  # busy, as a system call is: the loop is held
            pass
        return True


async def test_a_long_round_spaces_the_next_by_duty() -> None:
    """Writing may take at most half the time: reading and routing keep the rest."""
    rounds = Rounds()
    flusher = Flusher(rounds, interval=0.0, duty=1.0)
    took = 0.03
    for _ in range(2):
        flusher.dirty.add(SlowSession(took))  # type: ignore[arg-type]
        flusher.note_received()
        flusher.schedule()
        await rounds.next()
    # The first round ran at once and ended `took` later; the second could
    # not start before twice that after the first began.
    assert rounds.times[1] - rounds.times[0] >= 2 * took * 0.95
    flusher.close()
