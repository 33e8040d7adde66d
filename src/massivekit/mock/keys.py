"""Which keys the mock accepts, for which clusters and topics.

A key lacking a cluster answers as PROTOCOL.md says the real service does
(``auth_failed`` with an upgrade message), or, when the key is set up so,
authenticates and then refuses every subscription with ``not authorized``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from massivekit.config import Market
from massivekit.protocol.server import AuthDenial, AuthGrant
from massivekit.protocol.topics import prefix_of

UPGRADE_MESSAGE = (
    "Your plan doesn't include websocket access. Visit https://massive.com/pricing to upgrade."
)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key the mock knows.

    Args:
        key: the secret itself.
        clusters: the families it may use; ``None`` for all.
        refused_prefixes: event prefixes answered ``not authorized`` (e.g. ``{"Q"}``).
        lacking_cluster: how a cluster the key lacks answers.
        name: a label safe to log and to put in metrics.
    """

    key: str
    clusters: frozenset[Market] | None = None
    refused_prefixes: frozenset[str] = frozenset()
    lacking_cluster: Literal["auth_failed", "not_authorized"] = "auth_failed"
    name: str = field(default="")

    def label(self, index: int) -> str:
        return self.name or f"key{index}"


class KeyRing:
    """The keys of a mock server; usable as a protocol authenticator."""

    def __init__(self, specs: Iterable[KeySpec | str]) -> None:
        self._specs: dict[str, tuple[str, KeySpec]] = {}
        for index, spec in enumerate(specs):
            real = spec if isinstance(spec, KeySpec) else KeySpec(key=spec)
            self._specs[real.key] = (real.label(index), real)

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def label(self, key: str) -> str | None:
        """The loggable name of ``key``, or ``None`` when it is unknown."""
        entry = self._specs.get(key)
        return entry[0] if entry else None

    def rest_allows(self, key: str) -> bool:
        """Whether ``key`` may use the REST API."""
        return key in self._specs

    def __call__(self, key: str, market: Market) -> AuthGrant | AuthDenial:
        entry = self._specs.get(key)
        if entry is None:
            return AuthDenial()
        label, spec = entry
        has_cluster = spec.clusters is None or market.family in spec.clusters
        if not has_cluster and spec.lacking_cluster == "auth_failed":
            return AuthDenial(UPGRADE_MESSAGE)
        if not has_cluster:
            return AuthGrant(label, permits=_refuse_all)
        if spec.refused_prefixes:
            return AuthGrant(label, permits=_refusing(spec.refused_prefixes))
        return AuthGrant(label)

    def as_mapping(self) -> Mapping[str, KeySpec]:
        return {key: spec for key, (_, spec) in self._specs.items()}


def _refuse_all(topic: str) -> bool:
    return False


def _refusing(prefixes: frozenset[str]) -> Callable[[str], bool]:
    def permits(topic: str) -> bool:
        return prefix_of(topic) not in prefixes

    return permits
