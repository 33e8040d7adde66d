"""Which topics are wanted, by whom, and what the server said about each.

:class:`SubscriptionStore` wraps the pure reference-counted
:class:`~massivekit.protocol.table.SubscriptionTable` (many holders of a
topic share one upstream subscription; ``T.*`` stands in for ``T.AAPL``;
``A.*`` never covers ``AM.*``) and adds what a live connection needs:

* the state of every upstream topic: ``PENDING`` until the server acks it,
  ``ACTIVE`` once it has, ``UNCONFIRMED`` if the server never answered;
* refusals: a refused topic is dropped from the table (every holder loses
  it, and it is not resubscribed after each reconnect only to be refused
  again), and its reason is kept until someone asks for it anew;
* confirmations: a caller who wants to know the outcome of its topics gets
  a :class:`Confirmation`, settled when every topic it asked for is acked,
  refused or left unanswered, whichever upstream topic serves it.

The table is also the queue of commands issued while disconnected: changes
made then update the table only, and the next session subscribes the whole
upstream set. No I/O, no event loop.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from massivekit.protocol.table import Delta, SubscriptionTable
from massivekit.protocol.topics import is_wildcard, wildcard_of

__all__ = ["Confirmation", "Delta", "SubscriptionStore", "TopicState"]

S = TypeVar("S", bound=Hashable)


class TopicState(enum.Enum):
    """Where an upstream topic stands with the server."""

    PENDING = "pending"
    ACTIVE = "active"
    UNCONFIRMED = "unconfirmed"


@dataclass(eq=False)
class Confirmation:
    """The outcome of some topics, once every one of them is settled.

    Attributes:
        topics: the topics asked about.
        refused: refused topics and the server's reasons.
        unanswered: topics the server never answered.
        done: every topic is settled.
    """

    topics: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def ok(self) -> bool:
        """Settled with every topic acked."""
        return self.done and not self.refused and not self.unanswered


class SubscriptionStore(Generic[S]):
    """Reference-counted topics, their upstream state, and waiting confirmations."""

    def __init__(self) -> None:
        self._table: SubscriptionTable[S] = SubscriptionTable()
        self._state: dict[str, TopicState] = {}
        self._confirmations: list[Confirmation] = []
        self.refused: dict[str, str] = {}
        """Topics the server refused (and that were dropped), with its reasons."""

    def __repr__(self) -> str:
        return f"SubscriptionStore(upstream={len(self._state)}, refused={len(self.refused)})"

    @property
    def upstream(self) -> frozenset[str]:
        """The topics that must be subscribed upstream."""
        return self._table.upstream

    @property
    def topics(self) -> frozenset[str]:
        """Every topic held by someone."""
        return self._table.topics

    def topics_of(self, owner: S) -> frozenset[str]:
        """The topics ``owner`` holds."""
        return self._table.topics_of(owner)

    def owners_of(self, topic: str) -> list[S]:
        """Who holds ``topic`` as such (not through a wildcard)."""
        return [s for s in self._table.subscribers if topic in self._table.topics_of(s)]

    def refcount(self, topic: str) -> int:
        """How many owners hold exactly ``topic``."""
        return self._table.refcount(topic)

    def state(self, topic: str) -> TopicState | None:
        """The state of an upstream topic (``None`` if it is not upstream)."""
        return self._state.get(topic)

    @property
    def pending(self) -> bool:
        """Whether some upstream topic awaits the server's answer."""
        return TopicState.PENDING in self._state.values()

    def add(self, owner: S, topics: Iterable[str]) -> Delta:
        """``owner`` takes ``topics``; returns the upstream change to send."""
        topics = list(topics)
        for topic in topics:
            self.refused.pop(topic, None)
        return self._apply(self._table.add(owner, topics))

    def remove(self, owner: S, topics: Iterable[str]) -> Delta:
        """``owner`` gives ``topics`` up; returns the upstream change to send."""
        delta = self._apply(self._table.remove(owner, list(topics)))
        self._reevaluate()
        return delta

    def drop(self, owner: S) -> Delta:
        """``owner`` leaves with everything it held."""
        delta = self._apply(self._table.drop(owner))
        self._reevaluate()
        return delta

    def confirmation(self, topics: Iterable[str]) -> Confirmation:
        """A :class:`Confirmation` of ``topics`` (maybe already done)."""
        confirmation = Confirmation(tuple(dict.fromkeys(topics)))
        self._confirmations.append(confirmation)
        self._reevaluate()
        return confirmation

    def forget(self, confirmation: Confirmation) -> None:
        """Stop tracking a confirmation (its caller gave up waiting)."""
        if confirmation in self._confirmations:
            self._confirmations.remove(confirmation)

    def settle(
        self,
        op: str,
        acked: Iterable[str] = (),
        refused: Mapping[str, str] | None = None,
        unanswered: Iterable[str] = (),
    ) -> tuple[Delta, list[Confirmation]]:
        """Record the server's answer to a subscribe (unsubscribe answers change nothing).

        Returns:
            The upstream change caused by refusals (a refused wildcard gives
            its specific topics back to the server) and the confirmations
            now done.
        """
        delta = Delta()
        if op == "subscribe":
            self._mark(acked, TopicState.ACTIVE)
            self._mark(unanswered, TopicState.UNCONFIRMED)
            if refused:
                delta = self._refuse(refused)
        return delta, self._reevaluate()

    def restart(self) -> tuple[str, ...]:
        """A new session: every upstream topic is pending again; returns them, sorted."""
        upstream = sorted(self._table.upstream)
        self._state = dict.fromkeys(upstream, TopicState.PENDING)
        return tuple(upstream)

    def _mark(self, topics: Iterable[str], state: TopicState) -> None:
        for topic in topics:
            if topic in self._state:
                self._state[topic] = state

    def _refuse(self, refused: Mapping[str, str]) -> Delta:
        subscribe: set[str] = set()
        unsubscribe: set[str] = set()
        for topic, reason in refused.items():
            if topic not in self._state:
                continue  # no longer wanted: nothing to drop
            self.refused[topic] = reason
            for owner in self.owners_of(topic):
                change = self._apply(self._table.remove(owner, [topic]))
                subscribe.update(change.subscribe)
                unsubscribe.update(change.unsubscribe)
        # The refused topic itself never went through: only restored topics go out.
        unsubscribe -= set(refused)
        return Delta(tuple(sorted(subscribe - unsubscribe)), tuple(sorted(unsubscribe)))

    def _apply(self, delta: Delta) -> Delta:
        for topic in delta.subscribe:
            self._state[topic] = TopicState.PENDING
        for topic in delta.unsubscribe:
            self._state.pop(topic, None)
        return delta

    def _reevaluate(self) -> list[Confirmation]:
        done = [c for c in self._confirmations if self._evaluate(c)]
        if done:
            self._confirmations = [c for c in self._confirmations if not c.done]
        return done

    def _evaluate(self, confirmation: Confirmation) -> bool:
        """Settle ``confirmation`` if every topic is; returns whether it now is."""
        refused: dict[str, str] = {}
        unanswered: list[str] = []
        for topic in confirmation.topics:
            state = self._serving_state(topic)
            if state is TopicState.PENDING:
                return False
            if state is TopicState.UNCONFIRMED:
                unanswered.append(topic)
            elif state is None and topic in self.refused:
                refused[topic] = self.refused[topic]
        confirmation.refused = refused
        confirmation.unanswered = unanswered
        confirmation.done = True
        return True

    def _serving_state(self, topic: str) -> TopicState | None:
        """The state of the upstream topic serving ``topic`` (itself or its wildcard)."""
        state = self._state.get(topic)
        if state is None and not is_wildcard(topic):
            state = self._state.get(wildcard_of(topic))
        return state
