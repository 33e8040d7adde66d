"""A pure, reference-counted subscription table with wildcard coverage.

Many subscribers (stream consumers, proxy clients, scheduler slots) share
one upstream connection. A topic goes upstream when its first holder arrives
and leaves when its last holder goes; a specific topic (``T.AAPL``) is not
held upstream while its wildcard (``T.*``) is, and is restored when the last
wildcard holder leaves. Every change returns a :class:`Delta` whose
``subscribe`` part must be sent before its ``unsubscribe`` part, so that
swapping ``T.AAPL`` for ``T.*`` (or back) never leaves a gap in the data.

No I/O and no event loop: the client, the proxy and the scheduler drive it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, NamedTuple, TypeVar

from massivekit.protocol.topics import is_wildcard, prefix_of, wildcard_of

S = TypeVar("S", bound=Hashable)


class Delta(NamedTuple):
    """What to send upstream after a change: subscribe first, then unsubscribe."""

    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.subscribe or self.unsubscribe)


class SubscriptionTable(Generic[S]):
    """Topics held by subscribers, and the minimal upstream set that serves them."""

    def __init__(self) -> None:
        self._holders: dict[str, set[S]] = {}
        self._topics: dict[S, set[str]] = {}
        self._specific: dict[str, set[str]] = {}  # prefix -> held specific topics
        self._upstream: set[str] = set()

    @property
    def upstream(self) -> frozenset[str]:
        """The topics that must be subscribed upstream right now."""
        return frozenset(self._upstream)

    @property
    def topics(self) -> frozenset[str]:
        """Every topic held by at least one subscriber."""
        return frozenset(self._holders)

    @property
    def subscribers(self) -> frozenset[S]:
        """Every subscriber holding at least one topic."""
        return frozenset(self._topics)

    def topics_of(self, subscriber: S) -> frozenset[str]:
        """The topics ``subscriber`` holds."""
        return frozenset(self._topics.get(subscriber, ()))

    def refcount(self, topic: str) -> int:
        """How many subscribers hold exactly ``topic``."""
        return len(self._holders.get(topic, ()))

    def holders(self, topic: str) -> frozenset[S]:
        """Subscribers that receive ``topic``'s events: its own and its wildcard's."""
        own = self._holders.get(topic, set())
        if is_wildcard(topic):
            return frozenset(own)
        return frozenset(own | self._holders.get(wildcard_of(topic), set()))

    def add(self, subscriber: S, topics: Iterable[str]) -> Delta:
        """``subscriber`` takes ``topics``; returns the upstream change."""
        _require_collection(topics)
        before = set(self._upstream)
        held = self._topics.setdefault(subscriber, set())
        for topic in topics:
            if topic in held:
                continue
            held.add(topic)
            holders = self._holders.setdefault(topic, set())
            holders.add(subscriber)
            if len(holders) == 1:
                self._on_first_holder(topic)
        if not held:
            del self._topics[subscriber]
        return self._delta(before)

    def remove(self, subscriber: S, topics: Iterable[str]) -> Delta:
        """``subscriber`` gives up ``topics`` (ones it does not hold are ignored)."""
        _require_collection(topics)
        before = set(self._upstream)
        held = self._topics.get(subscriber)
        if held is None:
            return Delta()
        for topic in topics:
            if topic not in held:
                continue
            held.discard(topic)
            holders = self._holders[topic]
            holders.discard(subscriber)
            if not holders:
                del self._holders[topic]
                self._on_last_holder(topic)
        if not held:
            del self._topics[subscriber]
        return self._delta(before)

    def drop(self, subscriber: S) -> Delta:
        """``subscriber`` leaves with everything it held."""
        return self.remove(subscriber, list(self._topics.get(subscriber, ())))

    def _on_first_holder(self, topic: str) -> None:
        if is_wildcard(topic):
            # The wildcard now serves every specific topic of its prefix.
            self._upstream.difference_update(self._specific.get(prefix_of(topic), ()))
            self._upstream.add(topic)
            return
        self._specific.setdefault(prefix_of(topic), set()).add(topic)
        if wildcard_of(topic) not in self._holders:
            self._upstream.add(topic)

    def _on_last_holder(self, topic: str) -> None:
        self._upstream.discard(topic)
        prefix = prefix_of(topic)
        if is_wildcard(topic):
            # Restore the specific topics the wildcard was standing in for.
            self._upstream.update(self._specific.get(prefix, ()))
            return
        specific = self._specific[prefix]
        specific.discard(topic)
        if not specific:
            del self._specific[prefix]

    def _delta(self, before: set[str]) -> Delta:
        return Delta(
            subscribe=tuple(sorted(self._upstream - before)),
            unsubscribe=tuple(sorted(before - self._upstream)),
        )


def _require_collection(topics: Iterable[str]) -> None:
    if isinstance(topics, str | bytes):
        raise TypeError("pass a collection of topics, not a single string")
