"""The client-side rate limiter: a sliding window, tested without a loop."""

from __future__ import annotations

import pytest

from massivekit.rest._ratelimit import RateLimit, SlidingWindow


def test_rate_limit_validates() -> None:
    with pytest.raises(ValueError):
        RateLimit(0)
    with pytest.raises(ValueError):
        RateLimit(5, per=0)


def test_window_lets_the_first_n_through_then_spaces_them() -> None:
    window = SlidingWindow(RateLimit(requests=5, per=60.0))
    assert [window.reserve(0.0) for _ in range(5)] == [0.0] * 5
    # The 6th..10th must wait for the first grants to leave the window.
    assert window.reserve(0.0) == 60.0
    assert window.reserve(10.0) == 50.0
    assert window.reserve(61.0) == 0.0  # 3rd grant (at 0) has left the window by 61
    assert window.reserve(61.0) == 0.0


def test_queued_callers_are_served_in_order() -> None:
    window = SlidingWindow(RateLimit(requests=2, per=1.0))
    waits = [window.reserve(0.0) for _ in range(6)]
    assert waits == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_never_more_than_n_grants_in_any_window() -> None:
    limit = RateLimit(requests=3, per=10.0)
    window = SlidingWindow(limit)
    grants = []
    now = 0.0
    for step in range(40):
        now += (step % 7) * 0.9
        grants.append(now + window.reserve(now))
    assert grants == sorted(grants)
    for start in grants:
        assert sum(1 for g in grants if start <= g < start + limit.per) <= limit.requests
