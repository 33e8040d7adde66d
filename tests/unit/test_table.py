"""The reference-counted subscription table, wildcards included.

``hypothesis`` is not installed in the venv, so the property test below draws
its operation sequences from a seeded :class:`random.Random`: every seed is
a reproducible case.
"""

from __future__ import annotations

import random

import pytest

from massivekit.protocol.table import Delta, SubscriptionTable
from massivekit.protocol.topics import covers, is_wildcard, prefix_of, wildcard_of

POOL = ("T.*", "T.AAPL", "T.MSFT", "Q.*", "Q.AAPL", "A.*", "AM.AAPL")
SUBSCRIBERS = ("alice", "bob", "carol")


def test_delta_defaults_and_truth() -> None:
    assert Delta() == Delta((), ())
    assert not Delta()
    assert Delta(subscribe=("T.AAPL",))
    assert Delta(unsubscribe=("T.AAPL",))
    assert Delta(("T.*",), ("T.AAPL",)).subscribe == ("T.*",)


def test_empty_table() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    assert table.upstream == frozenset()
    assert table.topics == frozenset()
    assert table.subscribers == frozenset()
    assert table.topics_of("nobody") == frozenset()
    assert table.refcount("T.AAPL") == 0
    assert table.holders("T.AAPL") == frozenset()
    assert table.holders("T.*") == frozenset()


def test_first_holder_subscribes_and_last_unsubscribes() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    assert table.add("alice", ["T.AAPL"]) == Delta(subscribe=("T.AAPL",))
    assert table.add("bob", ["T.AAPL"]) == Delta()
    assert table.refcount("T.AAPL") == 2
    assert table.holders("T.AAPL") == {"alice", "bob"}
    assert table.remove("alice", ["T.AAPL"]) == Delta()
    assert table.upstream == {"T.AAPL"}
    assert table.remove("bob", ["T.AAPL"]) == Delta(unsubscribe=("T.AAPL",))
    assert table.upstream == frozenset()
    assert table.topics == frozenset()
    assert table.subscribers == frozenset()
    assert table.refcount("T.AAPL") == 0


def test_adding_a_held_topic_again_changes_nothing() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL"])
    assert table.add("alice", ["T.AAPL", "T.AAPL"]) == Delta()
    assert table.refcount("T.AAPL") == 1
    # One remove is enough: the duplicate add did not count twice.
    assert table.remove("alice", ["T.AAPL"]) == Delta(unsubscribe=("T.AAPL",))


def test_views_report_what_is_held() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL", "Q.*"])
    table.add("bob", ["Q.*", "AM.MSFT"])
    assert table.topics == {"T.AAPL", "Q.*", "AM.MSFT"}
    assert table.subscribers == {"alice", "bob"}
    assert table.topics_of("alice") == {"T.AAPL", "Q.*"}
    assert table.topics_of("carol") == frozenset()
    assert table.refcount("Q.*") == 2
    # The views are snapshots, not live sets.
    snapshot = table.topics_of("alice")
    table.add("alice", ["T.MSFT"])
    assert snapshot == {"T.AAPL", "Q.*"}


def test_adding_nothing_leaves_no_empty_subscriber() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    assert table.add("alice", []) == Delta()
    assert table.subscribers == frozenset()
    table.add("bob", ["T.AAPL"])
    assert table.add("bob", []) == Delta()
    assert table.subscribers == {"bob"}


def test_add_accepts_any_iterable() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    delta = table.add("alice", (t for t in ["T.MSFT", "T.AAPL"]))
    assert delta == Delta(subscribe=("T.AAPL", "T.MSFT"))  # sorted


@pytest.mark.parametrize("method", ["add", "remove"])
@pytest.mark.parametrize("topics", ["T.AAPL", b"T.AAPL", ""], ids=["str", "bytes", "empty"])
def test_a_single_string_is_not_a_collection(method: str, topics: str | bytes) -> None:
    """A bare string would be iterated character by character: refuse it."""
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL"])
    with pytest.raises(TypeError, match="collection of topics"):
        getattr(table, method)("alice", topics)
    assert table.topics_of("alice") == {"T.AAPL"}
    assert table.upstream == {"T.AAPL"}


def test_wildcard_replaces_the_specific_topics_it_covers() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL", "T.MSFT", "Q.AAPL"])
    # Subscribe first, unsubscribe after: swapping never leaves a gap.
    assert table.add("bob", ["T.*"]) == Delta(subscribe=("T.*",), unsubscribe=("T.AAPL", "T.MSFT"))
    assert table.upstream == {"T.*", "Q.AAPL"}
    assert table.holders("T.AAPL") == {"alice", "bob"}
    assert table.holders("T.GOOG") == {"bob"}
    assert table.holders("T.*") == {"bob"}
    assert table.holders("Q.AAPL") == {"alice"}


def test_removing_the_last_wildcard_restores_specific_topics() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL", "T.MSFT"])
    table.add("bob", ["T.*"])
    table.add("carol", ["T.*"])
    assert table.remove("bob", ["T.*"]) == Delta()
    assert table.drop("carol") == Delta(subscribe=("T.AAPL", "T.MSFT"), unsubscribe=("T.*",))
    assert table.upstream == {"T.AAPL", "T.MSFT"}


def test_specific_topic_under_a_held_wildcard_is_not_sent() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.*"])
    assert table.add("bob", ["T.AAPL"]) == Delta()
    assert table.upstream == {"T.*"}
    assert table.refcount("T.AAPL") == 1
    assert table.remove("bob", ["T.AAPL"]) == Delta()
    # T.AAPL is no longer held: the wildcard's departure must not restore it.
    assert table.drop("alice") == Delta(unsubscribe=("T.*",))
    assert table.upstream == frozenset()


@pytest.mark.parametrize(
    ("topics", "delta"),
    [
        (["T.*", "T.AAPL"], Delta(subscribe=("T.*",))),
        (["T.AAPL", "T.*"], Delta(subscribe=("T.*",))),
    ],
)
def test_wildcard_and_specific_in_one_call(topics: list[str], delta: Delta) -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    assert table.add("alice", topics) == delta
    assert table.upstream == {"T.*"}
    assert table.remove("alice", topics) == Delta(unsubscribe=("T.*",))
    assert table.upstream == frozenset()


def test_a_wildcard_does_not_cover_a_longer_prefix() -> None:
    # PROTOCOL.md: AM.* is not covered by A.*.
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["A.*"])
    assert table.add("bob", ["AM.AAPL"]) == Delta(subscribe=("AM.AAPL",))
    assert table.upstream == {"A.*", "AM.AAPL"}
    assert table.holders("AM.AAPL") == {"bob"}
    assert table.holders("A.AAPL") == {"alice"}
    assert table.add("carol", ["AM.*"]) == Delta(subscribe=("AM.*",), unsubscribe=("AM.AAPL",))
    assert table.upstream == {"A.*", "AM.*"}
    assert table.drop("alice") == Delta(unsubscribe=("A.*",))
    assert table.upstream == {"AM.*"}


@pytest.mark.parametrize("subscriber", ["alice", "nobody"])
def test_removing_what_is_not_held_is_ignored(subscriber: str) -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL"])
    assert table.remove(subscriber, ["T.MSFT", "Q.*"]) == Delta()
    assert table.upstream == {"T.AAPL"}
    assert table.topics_of("alice") == {"T.AAPL"}


def test_partial_remove_keeps_the_subscriber() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL", "T.MSFT"])
    assert table.remove("alice", ["T.AAPL"]) == Delta(unsubscribe=("T.AAPL",))
    assert table.subscribers == {"alice"}
    assert table.topics_of("alice") == {"T.MSFT"}


def test_drop_unknown_subscriber() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    assert table.drop("nobody") == Delta()


def test_drop_releases_everything_held() -> None:
    table: SubscriptionTable[str] = SubscriptionTable()
    table.add("alice", ["T.AAPL", "Q.*", "AM.MSFT"])
    table.add("bob", ["Q.*"])
    assert table.drop("alice") == Delta(unsubscribe=("AM.MSFT", "T.AAPL"))
    assert table.subscribers == {"bob"}
    assert table.upstream == {"Q.*"}


def test_any_hashable_subscriber() -> None:
    table: SubscriptionTable[tuple[str, int]] = SubscriptionTable()
    table.add(("proxy", 1), ["T.AAPL"])
    table.add(("proxy", 2), ["T.*"])
    assert table.holders("T.AAPL") == {("proxy", 1), ("proxy", 2)}


# -- property: the table always holds the minimal upstream set --------------


def _minimal_upstream(held: set[str]) -> set[str]:
    """Held topics not covered by a held wildcard of the same prefix."""
    return {t for t in held if is_wildcard(t) or wildcard_of(t) not in held}


def _check_invariants(table: SubscriptionTable[str], model: dict[str, set[str]]) -> None:
    held = set().union(*model.values())
    assert table.topics == held
    assert table.upstream == _minimal_upstream(held)
    assert table.subscribers == {s for s, ts in model.items() if ts}
    for subscriber, topics in model.items():
        assert table.topics_of(subscriber) == topics
    for topic in POOL:
        assert table.refcount(topic) == sum(topic in ts for ts in model.values())
        expected = {s for s, ts in model.items() if any(covers(h, topic) for h in ts)}
        assert table.holders(topic) == expected


@pytest.mark.parametrize("seed", range(200))
def test_random_operations_keep_upstream_minimal(seed: int) -> None:
    rng = random.Random(seed)
    table: SubscriptionTable[str] = SubscriptionTable()
    model: dict[str, set[str]] = {s: set() for s in SUBSCRIBERS}
    simulated: set[str] = set()
    for _ in range(60):
        subscriber = rng.choice(SUBSCRIBERS)
        op = rng.choice(("add", "add", "remove", "drop"))
        topics = rng.sample(POOL, rng.randint(0, 4))
        if op == "add":
            delta = table.add(subscriber, topics)
            model[subscriber] |= set(topics)
        elif op == "remove":
            delta = table.remove(subscriber, topics)
            model[subscriber] -= set(topics)
        else:
            delta = table.drop(subscriber)
            model[subscriber] = set()
        # A delta is disjoint, sorted, and never subscribes what is already up.
        assert not set(delta.subscribe) & set(delta.unsubscribe)
        assert list(delta.subscribe) == sorted(delta.subscribe)
        assert list(delta.unsubscribe) == sorted(delta.unsubscribe)
        assert not set(delta.subscribe) & simulated
        assert set(delta.unsubscribe) <= simulated
        simulated |= set(delta.subscribe)
        simulated -= set(delta.unsubscribe)
        assert simulated == table.upstream
        _check_invariants(table, model)


def test_the_property_pool_exercises_a_prefix_trap() -> None:
    # The pool above holds A.* and AM.AAPL on purpose: A.* must never cover AM.*.
    assert "A.*" in POOL
    assert "AM.AAPL" in POOL
    assert prefix_of("AM.AAPL") != prefix_of("A.*")
    assert _minimal_upstream({"A.*", "AM.AAPL"}) == {"A.*", "AM.AAPL"}
    assert _minimal_upstream({"T.*", "T.AAPL", "Q.AAPL"}) == {"T.*", "Q.AAPL"}
