"""Reconnect delays: exponential backoff with full jitter, as a pure policy.

Full jitter (a uniform draw in ``[0, cap)``, where the cap doubles with each
failed attempt up to ``max_delay``) spreads a crowd of clients cut at the
same instant, so they do not all knock on the server together again.

The attempt count goes back to zero only after a session that *delivered
data*, as alpaca-py does: a server that accepts the connection and then
drops it at once (a bad key the server reports late, a crash loop) must not
be retried at the first, fastest delay forever. The official client
reconnects at once, with no delay, and counts its attempts for the whole
life of the client; both are what this module avoids.

No clock and no event loop: the actor asks for the next delay and sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How reconnect delays grow.

    Attributes:
        initial: the cap of the first delay, in seconds.
        max_delay: the largest cap, in seconds.
        multiplier: the cap grows by this factor per failed attempt.
        max_attempts: give up after this many consecutive failed attempts
            (``None``: never give up).
        jitter: draw each delay uniformly below its cap (full jitter); off,
            the delay is the cap itself (deterministic, for tests).
    """

    initial: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max_delay < 0:
            raise ValueError("backoff delays must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")

    def cap(self, attempt: int) -> float:
        """The largest delay before attempt number ``attempt`` (1-based)."""
        exponent = max(0, attempt - 1)
        # Past ~1000 doublings float math overflows; the cap is long reached by then.
        if exponent > 1000:
            return self.max_delay
        return float(min(self.max_delay, self.initial * self.multiplier**exponent))


class Backoff:
    """The reconnect state of one connection: consecutive failures and the next delay.

    Args:
        policy: how delays grow.
        rng: the random source (seed one for reproducible delays).
    """

    def __init__(
        self, policy: BackoffPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self.attempt = 0
        """Consecutive reconnect attempts since the last session that delivered data."""
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"Backoff(attempt={self.attempt}, policy={self.policy})"

    @property
    def exhausted(self) -> bool:
        """Whether the attempt cap is reached."""
        limit = self.policy.max_attempts
        return limit is not None and self.attempt >= limit

    def next_delay(self) -> float | None:
        """Count one more attempt and return the delay before it.

        Returns:
            Seconds to wait, or ``None`` when the attempt cap is reached
            (the caller gives up).
        """
        if self.exhausted:
            return None
        self.attempt += 1
        cap = self.policy.cap(self.attempt)
        return self._rng.uniform(0.0, cap) if self.policy.jitter else cap

    def session_ended(self, delivered_data: bool) -> None:
        """A session ended; one that delivered data resets the attempt count."""
        if delivered_data:
            self.attempt = 0

    def reset(self) -> None:
        """Forget every failure (a user-requested fresh start)."""
        self.attempt = 0
