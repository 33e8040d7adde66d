"""The subscription store: shared upstream topics, refusals, confirmations."""

from __future__ import annotations

from massivekit.transport.subscriptions import SubscriptionStore, TopicState


def test_many_owners_share_one_upstream_topic() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    assert store.add("a", ["T.AAPL"]).subscribe == ("T.AAPL",)
    assert not store.add("b", ["T.AAPL"]), "the second holder sends nothing"
    assert store.refcount("T.AAPL") == 2
    assert not store.remove("a", ["T.AAPL"]), "one holder left: no unsubscribe"
    assert store.remove("b", ["T.AAPL"]).unsubscribe == ("T.AAPL",)
    assert store.upstream == frozenset()
    assert store.state("T.AAPL") is None


def test_wildcards_per_prefix() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["A.AAPL", "AM.AAPL"])
    delta = store.add("b", ["A.*"])
    assert delta.subscribe == ("A.*",)
    assert delta.unsubscribe == ("A.AAPL",)
    assert "AM.AAPL" in store.upstream, "A.* does not cover AM.*"
    assert store.drop("b").subscribe == ("A.AAPL",)
    assert store.topics_of("a") == frozenset({"A.AAPL", "AM.AAPL"})


def test_states_follow_the_answers() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["T.A", "T.B", "T.C"])
    assert store.pending
    store.settle("subscribe", acked=["T.A"], unanswered=["T.C"])
    assert store.state("T.A") is TopicState.ACTIVE
    assert store.state("T.B") is TopicState.PENDING
    assert store.state("T.C") is TopicState.UNCONFIRMED
    store.settle("unsubscribe", acked=["T.B"])  # unsubscribe answers change nothing
    assert store.state("T.B") is TopicState.PENDING
    assert store.restart() == ("T.A", "T.B", "T.C")
    assert {store.state(t) for t in store.upstream} == {TopicState.PENDING}


def test_refusal_drops_the_topic_for_every_holder() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["T.AAPL", "Q.AAPL"])
    store.add("b", ["Q.AAPL"])
    delta, _ = store.settle("subscribe", acked=["T.AAPL"], refused={"Q.AAPL": "not authorized"})
    assert not delta
    assert store.refused == {"Q.AAPL": "not authorized"}
    assert store.upstream == frozenset({"T.AAPL"})
    assert store.topics_of("b") == frozenset()
    assert store.restart() == ("T.AAPL",), "a refused topic is not resubscribed"
    store.add("a", ["Q.AAPL"])
    assert "Q.AAPL" not in store.refused, "asking again forgets the old refusal"


def test_a_refused_wildcard_gives_back_its_specific_topics() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["T.AAPL"])
    store.settle("subscribe", acked=["T.AAPL"])
    store.add("b", ["T.*"])
    delta, _ = store.settle("subscribe", refused={"T.*": "not authorized"})
    assert delta.subscribe == ("T.AAPL",)
    assert delta.unsubscribe == ()
    assert store.state("T.AAPL") is TopicState.PENDING


def test_refusals_of_topics_no_longer_wanted_are_ignored() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["Q.X"])
    store.remove("a", ["Q.X"])
    delta, done = store.settle("subscribe", refused={"Q.X": "no"})
    assert not delta
    assert not done
    assert store.refused == {}


def test_confirmation_settles_when_every_topic_is_answered() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["T.A", "Q.A", "AM.A"])
    confirmation = store.confirmation(["T.A", "Q.A", "AM.A"])
    assert not confirmation.done
    _, done = store.settle("subscribe", acked=["T.A"])
    assert done == []
    _, done = store.settle("subscribe", refused={"Q.A": "not authorized"}, unanswered=["AM.A"])
    assert done == [confirmation]
    assert confirmation.refused == {"Q.A": "not authorized"}
    assert confirmation.unanswered == ["AM.A"]
    assert not confirmation.ok


def test_confirmation_follows_the_serving_wildcard() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["T.AAPL"])
    confirmation = store.confirmation(["T.AAPL"])
    store.add("b", ["T.*"])  # T.AAPL leaves upstream: T.* now serves it
    _, done = store.settle("subscribe", acked=["T.*"])
    assert done == [confirmation]
    assert confirmation.ok


def test_confirmation_of_topics_already_active_or_given_up() -> None:
    store: SubscriptionStore[str] = SubscriptionStore()
    store.add("a", ["T.A"])
    store.settle("subscribe", acked=["T.A"])
    assert store.confirmation(["T.A"]).ok
    store.add("a", ["T.B"])
    waiting = store.confirmation(["T.B"])
    store.remove("a", ["T.B"])
    assert waiting.done, "nothing left to confirm"
    assert waiting.ok
    forgotten = store.confirmation(["T.A", "T.C"])
    store.forget(forgotten)
    store.forget(forgotten)  # twice is harmless
    assert "SubscriptionStore(" in repr(store)
