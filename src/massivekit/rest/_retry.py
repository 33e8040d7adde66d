"""When to retry a request, and how long to wait first: a pure policy, no I/O.

Every REST call is a GET, hence idempotent, so any of these is retried:

* a transport failure (refused, reset, DNS) or a per-attempt timeout;
* a status of :attr:`RetryPolicy.retry_statuses` (500, 502, 503, 504);

with exponential backoff and *full* jitter (a uniform draw in
``[0, min(max_delay, base_delay * 2**n)]``, AWS's "full jitter": retries of
many clients spread out instead of arriving in waves), for at most
``attempts`` attempts in all.

A 429 is not a failure of the request but the plan's limit: it is retried
after its ``Retry-After`` (or a backoff delay when the header is absent) as
long as the waits of the call add up to no more than
:attr:`RetryPolicy.rate_limit_budget`; it does not use up attempts.

Nothing is retried past the call's deadline.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from massivekit.config import RetryPolicy

RATE_LIMITED: Final = 429
MAX_RATE_LIMIT_RETRIES: Final = 100
"""A hard bound on 429 retries, should ``Retry-After: 0`` keep coming."""


def backoff_delay(policy: RetryPolicy, failures: int, draw: Callable[[], float]) -> float:
    """The wait before retry number ``failures`` (1 for the first retry): full jitter.

    Args:
        policy: base and maximum delays.
        failures: how many attempts have failed so far (>= 1).
        draw: a uniform draw in ``[0, 1)`` (``random.random``; injectable for tests).
    """
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** max(0, failures - 1))
    return draw() * ceiling


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns:
        Seconds to wait (>= 0), or ``None`` when the header is absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryState:
    """The retry bookkeeping of one call: attempts used, 429 waits spent, deadline.

    Args:
        policy: the client's retry policy.
        attempts: attempts allowed in all (overrides ``policy.attempts``).
        deadline: the call's deadline on the clock passed to :meth:`next_delay`, or ``None``.
        draw: uniform draws in ``[0, 1)`` for the jitter.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        attempts: int | None = None,
        deadline: float | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.attempts = max(1, policy.attempts if attempts is None else attempts)
        self.deadline = deadline
        self.draw = draw
        self.failures = 0
        self.rate_limited = 0
        self.rate_limit_waited = 0.0

    def retryable(self, status: int | None) -> bool:
        """Whether an outcome is of a retryable kind (``None``: a transport failure)."""
        return status is None or status == RATE_LIMITED or status in self.policy.retry_statuses

    def next_delay(
        self, status: int | None, now: float, retry_after: float | None = None
    ) -> float | None:
        """Record a failed attempt; say how long to wait before the next one.

        Args:
            status: the HTTP status, or ``None`` for a transport failure or timeout.
            now: the current time on the deadline's clock.
            retry_after: the server's ``Retry-After`` in seconds, if any.

        Returns:
            Seconds to wait, or ``None`` to give up and raise.
        """
        if not self.retryable(status):
            return None
        if status == RATE_LIMITED:
            delay = self._rate_limit_delay(retry_after)
        else:
            self.failures += 1
            if self.failures >= self.attempts:
                return None
            delay = backoff_delay(self.policy, self.failures, self.draw)
        if delay is None or (self.deadline is not None and now + delay >= self.deadline):
            return None
        return delay

    def _rate_limit_delay(self, retry_after: float | None) -> float | None:
        self.rate_limited += 1
        if self.rate_limited > MAX_RATE_LIMIT_RETRIES:
            return None
        delay = retry_after
        if delay is None:
            delay = backoff_delay(self.policy, self.rate_limited, self.draw)
        if self.rate_limit_waited + delay > self.policy.rate_limit_budget:
            return None
        self.rate_limit_waited += delay
        return delay
