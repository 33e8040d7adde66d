"""Subscription topics: ``EV.TICKER`` strings, their prefixes and wildcards.

Facts from PROTOCOL.md this module encodes:

* a topic's prefix is everything before the first dot (``T.BRK.A`` is prefix
  ``T``, ticker ``BRK.A``), so ``A.*`` does not cover ``AM.AAPL``;
* ``EV.*`` covers every instrument of that event kind;
* the server ignores an unknown prefix without a word, so a client must
  refuse it locally or it would wait for an ack forever;
* options quotes (``Q``) and options FMV take explicit contracts only, at
  most 1,000 contracts per connection;
* the ``params`` of an action are comma-separated, spaces after commas trimmed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

from massivekit.config import Market

WILDCARD: Final = "*"
MAX_OPTION_CONTRACTS: Final = 1_000

PREFIXES: Final[dict[Market, frozenset[str]]] = {
    Market.STOCKS: frozenset({"T", "Q", "A", "AM", "LULD", "NOI", "FMV", "LV"}),
    Market.OPTIONS: frozenset({"T", "Q", "A", "AM", "FMV", "LV"}),
    Market.FOREX: frozenset({"C", "CA", "CAS", "FMV", "AM", "LV"}),
    Market.CRYPTO: frozenset({"XT", "XQ", "XA", "XAS", "XL2", "FMV", "AM", "LV"}),
    Market.INDICES: frozenset({"A", "AM", "V", "FMV", "LV"}),
    Market.FUTURES: frozenset({"T", "Q", "A", "AM"}),
}
"""The event prefixes each cluster accepts (futures venues share the futures set)."""

_EXPLICIT_ONLY: Final[dict[Market, frozenset[str]]] = {
    Market.OPTIONS: frozenset({"Q", "FMV"}),
}


class TopicError(ValueError):
    """A topic string is not of the form ``EV.TICKER``."""


def split_params(params: str) -> list[str]:
    """Split an action's ``params`` into topics, trimming spaces and dropping empties."""
    return [part.strip() for part in params.split(",") if part.strip()]


def join_params(topics: Iterable[str]) -> str:
    """The ``params`` string of a subscribe/unsubscribe action for ``topics``."""
    return ",".join(topics)


def parse_topic(topic: str) -> tuple[str, str]:
    """Split ``topic`` into ``(prefix, ticker)``.

    Raises:
        TopicError: no dot, or an empty prefix or ticker.
    """
    prefix, dot, ticker = topic.partition(".")
    if not dot or not prefix or not ticker:
        raise TopicError(f"topic {topic!r} is not of the form EV.TICKER")
    return prefix, ticker


def prefix_of(topic: str) -> str:
    """The event prefix of ``topic`` (everything before the first dot)."""
    return topic.partition(".")[0]


def is_wildcard(topic: str) -> bool:
    """Whether ``topic`` is ``EV.*``."""
    return topic.partition(".")[2] == WILDCARD


def wildcard_of(topic: str) -> str:
    """The wildcard topic that covers ``topic`` (``T.AAPL`` → ``T.*``)."""
    return prefix_of(topic) + "." + WILDCARD


def covers(holder: str, topic: str) -> bool:
    """Whether holding ``holder`` delivers the events of ``topic``."""
    return holder == topic or (is_wildcard(holder) and prefix_of(topic) == prefix_of(holder))


def accepts_prefix(market: Market, prefix: str) -> bool:
    """Whether the cluster ``market`` serves topics with this event prefix."""
    return prefix in PREFIXES[market.family]


def explicit_only(market: Market, prefix: str) -> bool:
    """Whether ``prefix`` on ``market`` refuses wildcards and caps its contracts."""
    return prefix in _EXPLICIT_ONLY.get(market.family, frozenset())


class TopicProblem(enum.Enum):
    """Why a topic cannot be subscribed; the server answers none but the last."""

    MALFORMED = "not of the form EV.TICKER"
    UNKNOWN_PREFIX = "unknown event prefix for this cluster"
    WILDCARD_NOT_ALLOWED = "wildcard not allowed: name explicit contracts"

    @property
    def silent(self) -> bool:
        """Whether the real server ignores such a topic without a word."""
        return self is not TopicProblem.WILDCARD_NOT_ALLOWED


def check_topic(market: Market, topic: str) -> TopicProblem | None:
    """Why ``topic`` cannot be subscribed on ``market``, or ``None`` when it can.

    This checks the topic alone; the per-connection cap on option contracts
    needs the session's state and is checked by the protocols.
    """
    try:
        prefix, _ = parse_topic(topic)
    except TopicError:
        return TopicProblem.MALFORMED
    if not accepts_prefix(market, prefix):
        return TopicProblem.UNKNOWN_PREFIX
    if explicit_only(market, prefix) and is_wildcard(topic):
        return TopicProblem.WILDCARD_NOT_ALLOWED
    return None
