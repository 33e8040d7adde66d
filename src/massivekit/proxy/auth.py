"""Who may use the proxy: proxy keys for clients, a bearer token for admin.

Clients authenticate with proxy keys, never with the upstream key. The
decision is a :data:`~massivekit.protocol.server.Authenticator`, so the
downstream :class:`~massivekit.protocol.server.ServerProtocol` answers exactly
as Massive does: ``auth_success``, or ``auth_failed`` and a TCP drop. A key
not allowed a cluster answers ``auth_failed`` with a message naming the
cluster, as Massive answers a plan that lacks one (PROTOCOL.md).

Keys are compared in constant time, and only their names (``ClientKey.name``)
ever reach logs, health pages or metrics.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Final

from massivekit.auth import ApiKey
from massivekit.config import Market
from massivekit.protocol.server import AuthDenial, AuthGrant
from massivekit.protocol.status import MSG_AUTH_FAILED
from massivekit.proxy.config import ClientKey

__all__ = ["ProxyAuthenticator", "check_bearer", "cluster_denied_message"]

BEARER: Final = "Bearer "


def cluster_denied_message(market: Market) -> str:
    """What a client whose key lacks ``market`` is told (with ``auth_failed``)."""
    return f"Your proxy key is not allowed the {market.family.value} cluster."


class ProxyAuthenticator:
    """Decides proxy keys for clusters; an ``Authenticator`` for ``ServerProtocol``.

    Args:
        keys: the accepted proxy keys.
    """

    def __init__(self, keys: Iterable[ClientKey]) -> None:
        self._keys: dict[str, ClientKey] = {}
        for key in keys:
            self._keys[key.key.reveal()] = key

    def __repr__(self) -> str:
        return f"ProxyAuthenticator(keys={len(self._keys)})"

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, secret: str) -> ClientKey | None:
        """The :class:`ClientKey` whose secret is ``secret``, if any.

        Every known key is compared, in constant time, so the time taken
        tells nothing about how close a guess was.
        """
        found: ClientKey | None = None
        given = secret.encode()
        for value, key in self._keys.items():
            if hmac.compare_digest(value.encode(), given):
                found = key
        return found

    def __call__(self, secret: str, market: Market) -> AuthGrant | AuthDenial:
        """The verdict on ``secret`` for ``market``."""
        key = self.find(secret)
        if key is None:
            return AuthDenial(MSG_AUTH_FAILED)
        if not key.allows(market):
            return AuthDenial(cluster_denied_message(market))
        return AuthGrant(key.name or "client")


def check_bearer(header: str | None, token: ApiKey | None) -> bool:
    """Whether an ``Authorization`` header carries the admin token.

    Args:
        header: the header's value, if sent.
        token: the admin token; ``None`` refuses everyone (admin disabled).

    Returns:
        ``True`` only for ``Bearer <token>``, compared in constant time.
    """
    if token is None or header is None or not header.startswith(BEARER):
        return False
    return hmac.compare_digest(header[len(BEARER) :].strip().encode(), token.reveal().encode())
