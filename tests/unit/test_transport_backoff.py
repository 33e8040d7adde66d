"""Backoff policy: growth, cap, full jitter, attempt cap, reset only after data."""

from __future__ import annotations

import random

import pytest

from massivekit.transport.backoff import Backoff, BackoffPolicy


def test_caps_double_up_to_the_maximum() -> None:
    policy = BackoffPolicy(initial=0.5, max_delay=4.0, multiplier=2.0)
    assert [policy.cap(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.cap(0) == 0.5
    assert policy.cap(10_000) == 4.0  # no float overflow on absurd attempt counts


def test_without_jitter_the_delay_is_the_cap() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, max_delay=8.0, jitter=False))
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.attempt == 5


def test_full_jitter_stays_below_the_cap_and_spreads() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, max_delay=1.0), rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(d is not None and 0.0 <= d <= 1.0 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 100, "jitter spreads clients apart"


def test_seeded_jitter_is_reproducible() -> None:
    one = Backoff(rng=random.Random(3))
    two = Backoff(rng=random.Random(3))
    assert [one.next_delay() for _ in range(5)] == [two.next_delay() for _ in range(5)]


def test_attempt_cap_gives_up() -> None:
    backoff = Backoff(BackoffPolicy(max_attempts=2, jitter=False))
    assert backoff.next_delay() is not None
    assert backoff.next_delay() is not None
    assert backoff.exhausted
    assert backoff.next_delay() is None
    assert backoff.attempt == 2


def test_reset_only_after_a_session_that_delivered_data() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, jitter=False))
    backoff.next_delay()
    backoff.next_delay()
    backoff.session_ended(delivered_data=False)  # connected, then dropped at once
    assert backoff.next_delay() == 4.0
    backoff.session_ended(delivered_data=True)
    assert backoff.attempt == 0
    assert backoff.next_delay() == 1.0
    backoff.reset()
    assert backoff.attempt == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": -1.0}, {"max_delay": -1.0}, {"multiplier": 0.5}, {"max_attempts": 0}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_repr_shows_the_attempt() -> None:
    assert "attempt=0" in repr(Backoff())
