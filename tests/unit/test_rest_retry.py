"""The retry policy: backoff with full jitter, attempts, 429 budget, deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from massivekit.config import RetryPolicy
from massivekit.rest._retry import (
    MAX_RATE_LIMIT_RETRIES,
    RetryState,
    backoff_delay,
    parse_retry_after,
)

POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=3.0, rate_limit_budget=10.0)


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    assert [backoff_delay(POLICY, n, lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_delay(POLICY, 3, lambda: 0.0) == 0.0
    assert backoff_delay(POLICY, 3, lambda: 0.25) == 0.5


@pytest.mark.parametrize("status", [None, 500, 502, 503, 504])
def test_retryable_failures_use_up_attempts(status: int | None) -> None:
    state = RetryState(POLICY, draw=lambda: 1.0)
    delays = [state.next_delay(status, now=0.0) for _ in range(4)]
    assert delays == [0.5, 1.0, 2.0, None]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 501])
def test_other_statuses_are_final(status: int) -> None:
    assert RetryState(POLICY).next_delay(status, now=0.0) is None


def test_attempts_override_and_minimum_of_one() -> None:
    assert RetryState(POLICY, attempts=1).next_delay(503, now=0.0) is None
    assert RetryState(POLICY, attempts=0).attempts == 1
    state = RetryState(POLICY, attempts=2, draw=lambda: 1.0)
    assert state.next_delay(None, now=0.0) == 0.5
    assert state.next_delay(None, now=0.0) is None


def test_no_retry_past_the_deadline() -> None:
    state = RetryState(POLICY, deadline=10.0, draw=lambda: 1.0)
    assert state.next_delay(503, now=9.0) == 0.5
    assert state.next_delay(503, now=9.5) is None


def test_rate_limit_waits_within_budget_without_using_attempts() -> None:
    state = RetryState(POLICY, attempts=1)
    assert state.next_delay(429, now=0.0, retry_after=4.0) == 4.0
    assert state.next_delay(429, now=0.0, retry_after=4.0) == 4.0
    assert state.next_delay(429, now=0.0, retry_after=4.0) is None  # 12 s > budget of 10
    assert state.failures == 0


def test_rate_limit_without_retry_after_backs_off() -> None:
    state = RetryState(POLICY, draw=lambda: 1.0)
    assert state.next_delay(429, now=0.0) == 0.5
    assert state.next_delay(429, now=0.0) == 1.0


def test_rate_limit_retries_are_bounded_even_at_zero_wait() -> None:
    state = RetryState(POLICY)
    delays = [
        state.next_delay(429, now=0.0, retry_after=0.0) for _ in range(MAX_RATE_LIMIT_RETRIES + 1)
    ]
    assert delays[:-1] == [0.0] * MAX_RATE_LIMIT_RETRIES
    assert delays[-1] is None


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=now) == 30.0
    earlier = (now - timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(earlier, now=now) == 0.0
