"""The proxy's upstream side: one resilient connection per cluster, shared by all.

An :class:`Upstream` wraps one :class:`~massivekit.transport.connection.Connection`
(reconnect with jittered backoff, resubscribe everything, WebSocket pings and
a silence watchdog, ``max_connections`` waited out rather than fought) and
adds what a proxy needs:

* **the union of the clients' sets**: every client is an owner in the
  connection's reference-counted store, so the upstream set is minimal with
  wildcard coverage (``T.*`` held: no ``T.X`` upstream; when the last ``T.*``
  leaves, the ``T.X`` still held come back);
* **a grace period**: topics a client gives up pass to a ``grace`` owner for
  ``grace`` seconds before the upstream unsubscribe, in case a client comes
  back (a program restarting should not churn the upstream);
* **the gap, told**: clients stay connected through an upstream reconnect and
  are told with a status event, in the Massive shape ``{"ev":"status",...}``:

  - ``upstream_reconnecting``: the upstream session ended; data pauses (the
    message says why, e.g. ``max_connections``);
  - ``upstream_restored``: a new upstream session is READY; data resumes;
  - ``upstream_failed``: the upstream ended for good (its key was refused).

* ``max_connections`` upstream is surfaced loudly: an error log line, the
  health page and a counter, and the connection waits ``later_delay``
  before trying again (another holder of the key wants the slot).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Final

from massivekit.auth import ApiKey, get_logger, redact_url
from massivekit.config import Market
from massivekit.errors import MassiveError, StreamClosed
from massivekit.protocol.status import status_frame
from massivekit.proxy.downstream import CONTROL, Flusher
from massivekit.proxy.router import Router
from massivekit.transport.config import ConnectionConfig
from massivekit.transport.connection import Connection, RefusalSink
from massivekit.transport.events import ConnectionEvent, ConnectionState
from massivekit.transport.handlers.massive import MassiveHandler
from massivekit.transport.socket import SocketConnector

__all__ = [
    "GRACE_OWNER",
    "UPSTREAM_FAILED",
    "UPSTREAM_RECONNECTING",
    "UPSTREAM_RESTORED",
    "Upstream",
]

_log = get_logger("massivekit.proxy.upstream")

GRACE_OWNER: Final = "proxy-grace"
"""The owner that holds given-up topics during the grace period."""
UPSTREAM_RECONNECTING: Final = "upstream_reconnecting"
UPSTREAM_RESTORED: Final = "upstream_restored"
UPSTREAM_FAILED: Final = "upstream_failed"


class Upstream:
    """The upstream connection of one cluster and the topics held on it.

    Args:
        market: the cluster.
        url: its WebSocket URL (may carry a token: only logged redacted).
        key: the upstream API key.
        router: the cluster's router (the sink routes every frame through it).
        flusher: the proxy's write scheduler (told when frames arrive).
        grace: seconds a given-up topic stays upstream.
        config: the connection's timeouts and policies.
        connector: the WebSocket adapter (picows if installed, else aiohttp).
        on_refused: told of each client (owner) that lost topics to an
            upstream refusal, with the topics and the upstream's reasons.
    """

    def __init__(
        self,
        market: Market,
        url: str,
        key: ApiKey,
        router: Router,
        flusher: Flusher,
        *,
        grace: float = 30.0,
        config: ConnectionConfig | None = None,
        connector: SocketConnector | None = None,
        on_refused: RefusalSink | None = None,
    ) -> None:
        self.market = market
        self._on_refused = on_refused
        self.refused = 0
        self.url = url
        self.grace = grace
        self._key = key
        self._router = router
        self._flusher = flusher
        self._config = config or ConnectionConfig()
        self._connector = connector
        self._grace: dict[str, float] = {}  # topic -> loop.time() deadline
        self._grace_changed = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._gap = False
        self.reconnects = 0
        self.max_connections = 0
        self.last_reason = ""
        self.grace_expired = 0
        self.conn = self._connect()

    def __repr__(self) -> str:
        return f"Upstream({self.market.value}, {self.conn.state.value})"

    def _connect(self) -> Connection:
        return Connection(
            self.url,
            MassiveHandler(self._key, self.market),
            on_update=self._on_frame,
            on_refused=self._refused,
            config=self._config,
            connector=self._connector,
            on_event=self._on_event,
            name=f"upstream {self.market.value}@{redact_url(self.url)}",
        )

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the connection and the grace keeper (idempotent)."""
        self.conn.start()
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep_grace(), name=f"proxy-grace-{self.market.value}"
            )

    async def aclose(self) -> None:
        """Close the connection and stop the keeper."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.wait([self._keeper])
            self._keeper = None
        await self.conn.aclose()

    async def reconnect(self) -> None:
        """End the upstream session and open a new one at once, same topics (admin).

        Clients are told of the gap as for any upstream reconnect
        (``upstream_reconnecting``, then ``upstream_restored``).
        """
        self.conn.reconnect("reconnect requested by the proxy's admin")

    # -- topics --------------------------------------------------------------------------

    @property
    def topics(self) -> frozenset[str]:
        """The topics subscribed (or to subscribe) upstream: minimal, wildcards covering."""
        return self.conn.subscriptions.upstream

    @property
    def in_grace(self) -> frozenset[str]:
        """Topics held only for the grace period right now."""
        return frozenset(self._grace)

    async def hold(self, owner: Hashable, topics: Iterable[str]) -> None:
        """``owner`` (a client id) holds ``topics`` upstream."""
        wanted = list(topics)
        if not wanted:
            return
        try:
            await self.conn.subscribe(wanted, owner=owner)
        except MassiveError as exc:  # the upstream ended for good: clients were told
            _log.warning("= %s: cannot subscribe upstream: %s", self.market.value, exc)

    async def release(self, owner: Hashable, topics: Iterable[str]) -> None:
        """``owner`` gives ``topics`` up; upstream they stay ``grace`` seconds more."""
        store = self.conn.subscriptions
        held = [t for t in topics if t in store.topics_of(owner)]
        if not held:
            return
        try:
            if self.grace > 0:
                await self.conn.subscribe(held, owner=GRACE_OWNER)
                deadline = asyncio.get_running_loop().time() + self.grace
                for topic in held:
                    self._grace[topic] = deadline
                self._grace_changed.set()
            await self.conn.unsubscribe(held, owner=owner)
        except StreamClosed:
            # The upstream is shutting down (drain, proxy stop): every client
            # leaves at once and there is nothing left to unsubscribe from.
            _log.debug("= %s: upstream closed; unsubscribe skipped", self.market.value)
        except MassiveError as exc:
            _log.warning("= %s: cannot unsubscribe upstream: %s", self.market.value, exc)

    async def release_all(self, owner: Hashable) -> None:
        """``owner`` left: give up everything it held."""
        await self.release(owner, self.conn.subscriptions.topics_of(owner))

    async def _keep_grace(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = min(self._grace.values(), default=loop.time() + 3600.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._grace_changed.wait()
            self._grace_changed.clear()
            now = loop.time()
            expired = [t for t, d in self._grace.items() if d <= now]
            for topic in expired:
                del self._grace[topic]
            if expired:
                self.grace_expired += len(expired)
                _log.debug("= %s: grace over for %d topics", self.market.value, len(expired))
                with contextlib.suppress(MassiveError):
                    await self.conn.unsubscribe(expired, owner=GRACE_OWNER)

    # -- from the connection ------------------------------------------------------------

    def _refused(self, owner: Hashable, lost: Mapping[str, str]) -> None:
        """The upstream refused topics ``owner`` held (its client was acked already)."""
        if owner == GRACE_OWNER:
            return
        self.refused += len(lost)
        _log.warning(
            "= %s: upstream refused %s for client #%s", self.market.value, sorted(lost), owner
        )
        if self._on_refused is not None:
            self._on_refused(owner, lost)

    def _on_frame(self, data: Any, topic: str | None) -> None:
        self._flusher.note_received()
        self._router.route(data if type(data) is bytes else _as_bytes(data))

    def _on_event(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.RECONNECTING:
            self.reconnects += 1
            self.last_reason = event.reason
            if event.reason == "max_connections":
                self.max_connections += 1
                _log.error(
                    "= %s: upstream refused with max_connections: another program holds "
                    "this key's %s connection; waiting %.0fs before trying again",
                    self.market.value,
                    self.market.family.value,
                    event.delay or 0.0,
                )
            self._announce_gap(event.reason or "upstream connection lost")
        elif event.state is ConnectionState.READY and self._gap:
            self._gap = False
            self._broadcast(UPSTREAM_RESTORED, "upstream connection restored")
        elif event.state is ConnectionState.CLOSED and event.error is not None:
            self.last_reason = event.reason
            _log.error("= %s: upstream ended for good: %s", self.market.value, event.error)
            self._broadcast(UPSTREAM_FAILED, f"upstream failed: {event.reason}")

    def _announce_gap(self, reason: str) -> None:
        if not self._gap:
            self._gap = True
            self._broadcast(UPSTREAM_RECONNECTING, f"upstream reconnecting: {reason}")

    def _broadcast(self, status: str, message: str) -> None:
        self._router.broadcast(status_frame((status, message)), CONTROL)

    # -- health ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """A JSON-ready view of this upstream (no key, URL redacted)."""
        conn = self.conn
        return {
            "cluster": self.market.value,
            "url": redact_url(self.url),
            "state": conn.state.value,
            "healthy": conn.state is ConnectionState.READY,
            "sessions": conn.sessions,
            "reconnects": self.reconnects,
            "max_connections": self.max_connections,
            "last_reason": self.last_reason,
            "error": None if conn.error is None else str(conn.error),
            "topics": len(self.topics),
            "in_grace": len(self._grace),
            "refused": self.refused,
            "frames_in": self._router.frames_in,
            "bad_frames": self._router.bad_frames,
        }


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    return bytes(data)
