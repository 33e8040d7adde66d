"""A client-side rate limiter for plan limits (e.g. 5 requests per minute).

The free plan answers 429 past its limit; spacing requests on our side costs
no round trip and no rate-limit budget. :class:`SlidingWindow` is the pure
rule, :class:`AsyncRateLimiter` the thin async adapter every request of a
client goes through (retries included: each attempt is a request to the plan).

The rule: at most ``requests`` grants in any ``per`` seconds. Each caller
*reserves* its grant time at once, which is then the earliest moment that
keeps the rule, and sleeps until it; concurrent callers thus queue in arrival
order with no lock and no polling.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` requests in any window of ``per`` seconds.

    Raises:
        ValueError: ``requests`` < 1 or ``per`` <= 0.
    """

    requests: int
    per: float = 60.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per <= 0:
            raise ValueError("RateLimit needs requests >= 1 and per > 0")


class SlidingWindow:
    """The grant times of the last ``limit.requests`` requests; no I/O, no clock of its own."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._grants: deque[float] = deque(maxlen=limit.requests)

    def reserve(self, now: float) -> float:
        """Reserve the next grant; return how long to wait for it from ``now``.

        Grant times never decrease, so the oldest of the last ``requests``
        grants tells when the window has room again.
        """
        at = now
        if len(self._grants) == self.limit.requests:
            at = max(now, self._grants[0] + self.limit.per)
        self._grants.append(at)
        return at - now


class AsyncRateLimiter:
    """:class:`SlidingWindow` for an event loop, shared by every call of one client.

    Args:
        limit: the plan limit to keep.
        clock: monotonic seconds (injectable for tests).
        sleep: the sleep to wait with (injectable for tests).
    """

    def __init__(
        self, limit: RateLimit, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._window = SlidingWindow(limit)
        self._clock = clock
        self._sleep = sleep

    @property
    def limit(self) -> RateLimit:
        """The limit this limiter keeps."""
        return self._window.limit

    async def acquire(self) -> float:
        """Wait for this request's turn.

        Returns:
            The seconds waited (0 when the window had room).
        """
        delay = self._window.reserve(self._clock())
        if delay > 0:
            await self._sleep(delay)
        return delay
