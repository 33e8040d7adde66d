"""The connection actor: one logical connection that survives its sockets.

:class:`Connection` owns one task (its runner) that connects, authenticates,
serves the session and, when the session ends, decides: reconnect after a
backoff, or stop for good. Around that loop it keeps what must outlive any
one socket: the subscription store, the queue of requests made while
disconnected, confirmations awaited by callers, and the event streams.

What it guarantees:

* never silently dead: a connect timeout, an auth timeout, a heartbeat
  (WebSocket or protocol ping) with a pong deadline, and a data-silence
  watchdog (no message for ``silence_timeout`` seconds: reconnect);
* never a kicking war: a server notice asking for a long pause
  (``Reconnect.LATER``, Massive's ``max_connections``) waits ``later_delay``
  or ends the connection, as configured;
* nothing lost while reconnecting: subscribe/unsubscribe change the store,
  requests wait in a bounded queue, and the next session resubscribes every
  topic in batches; a refusal drops only the refused topics;
* the socket reader never waits: updates go to a synchronous sink.

The socket library (a :class:`~massivekit.transport.socket.SocketConnector`) and
the protocol (a :class:`SessionFactory`) are plugged in; the actor knows neither.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar, overload

from massivekit.auth import get_logger, redact_url
from massivekit.errors import (
    AuthError,
    Disconnected,
    MassiveError,
    ProtocolError,
    RequestTimeout,
    StreamClosed,
    SubscriptionRefused,
    TransportError,
)
from massivekit.transport.backoff import Backoff
from massivekit.transport.config import ConnectionConfig, Heartbeat
from massivekit.transport.events import (
    ConnectionEvent,
    ConnectionState,
    EventHub,
    EventStream,
    Listener,
)
from massivekit.transport.handler import (
    AuthRejected,
    Disconnect,
    Incoming,
    Pong,
    ProtocolSession,
    Ready,
    Reconnect,
    Response,
    SubscriptionResult,
    Unknown,
    Update,
)
from massivekit.transport.live import DirectSink, Live
from massivekit.transport.requests import RequestQueue, convert_result
from massivekit.transport.socket import SocketConnector, default_connector
from massivekit.transport.subscriptions import Confirmation, SubscriptionStore, TopicState

__all__ = ["Connection", "ConnectionConfig", "Heartbeat", "SessionFactory"]

_log = get_logger("massivekit.transport.connection")
R = TypeVar("R")
DEFAULT_OWNER: Final = "default"  # the owner of topics subscribed without naming one


class SessionFactory(Protocol):
    """Anything that makes a fresh :class:`ProtocolSession` per connection (a handler)."""

    def open_session(self) -> ProtocolSession:
        """A new per-connection protocol state machine."""
        ...


UpdateSink = Callable[[Any, str | None], None]
RECONNECT_REQUESTED: Final = "reconnect_requested"
"""The reason of a session ended by :meth:`Connection.reconnect`."""
RefusalSink = Callable[[Hashable, Mapping[str, str]], None]
"""Told of topics an owner lost to the server's refusal: ``(owner, {topic: reason})``."""


class Connection:
    """A resilient connection to one WebSocket endpoint, speaking one protocol.

    Args:
        url: the ``ws://``/``wss://`` endpoint (it may carry a token: it is
            never logged unredacted).
        handler: makes the protocol session of each connection.
        on_update: called, synchronously and in order, with each update's
            payload and topic; it must not block.
        direct: optionally, a sink that takes a READY session's updates straight
            off the socket (see :class:`~massivekit.transport.live.DirectSink`).
        on_refused: called with each owner that lost topics to a refusal of
            the server, and those topics with the server's reasons (a proxy
            tells its clients; without ``confirm`` nobody else learns of it).
        config: timeouts and policies.
        connector: the WebSocket library adapter (picows if installed, else aiohttp).
        on_event: called with every :class:`ConnectionEvent`.
        name: a label for logs.
    """

    def __init__(
        self,
        url: str,
        handler: SessionFactory,
        *,
        on_update: UpdateSink,
        direct: DirectSink | None = None,
        on_refused: RefusalSink | None = None,
        config: ConnectionConfig | None = None,
        connector: SocketConnector | None = None,
        on_event: Listener | None = None,
        name: str = "",
    ) -> None:
        self.url = url
        self.config = config or ConnectionConfig()
        self.name = name or redact_url(url)
        self._handler = handler
        self._sink = on_update
        self._direct = direct
        self._on_refused = on_refused
        self._connector = connector or default_connector()
        self._events = EventHub(self.name)
        if on_event is not None:
            self._events.add(on_event)
        self._state = ConnectionState.DISCONNECTED
        self._store: SubscriptionStore[Hashable] = SubscriptionStore()
        self._requests = RequestQueue(self.config.max_pending)
        self._waiting: dict[Confirmation, asyncio.Future[None]] = {}
        self._backoff = Backoff(self.config.backoff)
        self._live: Live | None = None
        self._bytes_before = 0  # bytes read by the sessions that ended
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self.error: BaseException | None = None
        """The terminal error, once the connection is CLOSED by one."""
        self.sessions = 0
        """Sessions that reached READY."""
        self.unknown_messages = 0
        self.sink_errors = 0

    def __repr__(self) -> str:
        return f"Connection({self.name!r}, {self._state.value})"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current state."""
        return self._state

    @property
    def subscriptions(self) -> SubscriptionStore[Hashable]:
        """The subscription store (read it; change it through :meth:`subscribe`)."""
        return self._store

    def start(self) -> None:
        """Start the runner (idempotent); returns at once."""
        if self._runner is None and not self._closing:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def wait_ready(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for a READY session.

        Args:
            timeout: seconds; the connect and auth timeouts together by default.

        Raises:
            RequestTimeout: not READY in time.
            MassiveError: the connection ended for good (its terminal error).
        """
        limit = timeout if timeout is not None else self._attempt_budget()
        closed = self._events.closed_future()
        ready: asyncio.Future[Any] = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait([ready, closed], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            closed.cancel()
        if self._state is ConnectionState.READY:
            return
        self._raise_if_closed()
        raise RequestTimeout(f"{self.name}: not ready within {limit:g}s")

    def refresh_direct(self) -> None:
        """Have the direct sink bound again for the READY session (see ``DirectSink``)."""
        if self._live is not None:
            self._live.rebind_direct()

    @property
    def bytes_received(self) -> int:
        """Bytes read over every session (see ``SocketConnection.bytes_received``)."""
        live = self._live
        current = live.conn.bytes_received if live is not None and live.conn is not None else 0
        return self._bytes_before + current

    def reconnect(self, reason: str = "reconnect requested") -> None:
        """End the current session and open a new one at once, keeping every subscription.

        Statuses become events as for any reconnect (``reconnecting``, then
        ``ready``) with ``reason`` ``reconnect_requested``. While waiting out
        a backoff, the wait ends now. While a session is being opened
        (connecting, before it is served) that session is already the new
        one, and nothing more happens; nor before :meth:`start`.

        Raises:
            StreamClosed: the connection is closing or closed.
        """
        self._raise_if_closed()
        live = self._live
        if live is not None:
            error = Disconnected(f"{self.name}: {reason}", reason=RECONNECT_REQUESTED)
            live.note(error, RECONNECT_REQUESTED, Reconnect.NOW)
            live.request_stop()
        elif self._state is ConnectionState.RECONNECTING:
            self._wake.set()

    async def aclose(self) -> None:
        """Close gracefully and stop the runner; idempotent."""
        if self._state is ConnectionState.CLOSED:
            return
        self._closing = True
        self._set_state(ConnectionState.CLOSING)
        runner = self._runner
        if runner is not None and not runner.done():
            live = self._live
            if live is not None:
                live.request_stop()
                await asyncio.wait([runner], timeout=self.config.close_timeout + 1.0)
            runner.cancel()
            await asyncio.wait([runner])
        self._finish(None)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def events(self, maxsize: int = 256) -> EventStream:
        """A new stream of every state change from now on (ends after CLOSED)."""
        return self._events.stream(maxsize)

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback`` with every state change (synchronously; keep it short)."""
        self._events.add(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling ``callback`` (ignored if it is not registered)."""
        self._events.remove(callback)

    # -- commands ----------------------------------------------------------------------

    async def subscribe(
        self,
        topics: Iterable[str],
        *,
        owner: Hashable = DEFAULT_OWNER,
        confirm: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Hold ``topics`` for ``owner``; the upstream subscription goes out at once if READY.

        Args:
            topics: topics to hold (a collection, not one string).
            owner: who holds them; the upstream unsubscribe waits for the last owner.
            confirm: wait for the server's answer to every topic.
            timeout: seconds to wait when confirming (one attempt's budget by default).

        Raises:
            SubscriptionRefused: (confirm) some topics were refused; ``topics`` names them.
            RequestTimeout: (confirm) no answer in time; ``topics`` names the unanswered.
            StreamClosed: the connection is closed.
        """
        wanted = _topic_list(topics)
        self._raise_if_closed()
        self._send_delta(self._store.add(owner, wanted))
        if confirm:
            await self._confirm(self._store.confirmation(wanted), timeout)

    async def unsubscribe(self, topics: Iterable[str], *, owner: Hashable = DEFAULT_OWNER) -> None:
        """Give ``topics`` up for ``owner``; upstream only when no owner holds them.

        Raises:
            StreamClosed: the connection is closed.
        """
        wanted = _topic_list(topics)
        self._raise_if_closed()
        self._send_delta(self._store.remove(owner, wanted))

    @overload
    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        result_type: type[R],
    ) -> R: ...

    @overload
    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        result_type: None = None,
    ) -> Any: ...

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        result_type: type[R] | None = None,
    ) -> R | Any:
        """Send a request and wait for its response (queued while not READY).

        Args:
            method: the protocol's method name.
            params: its parameters (any JSON value).
            timeout: seconds, queueing included (``config.request_timeout`` by default).
            result_type: convert the result to this type (a msgspec Struct...).

        Returns:
            The result, converted if ``result_type`` is given.

        Raises:
            RequestTimeout: no answer in time.
            RequestFailed: the peer answered with an error.
            TransportError: the connection dropped with the request in flight,
                or too many requests are outstanding.
            DeserializeError: the result does not fit ``result_type``.
            StreamClosed: the connection is closed.
        """
        self._raise_if_closed()
        limit = self.config.request_timeout if timeout is None else timeout
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = self._requests.submit(method, params, future)
        live = self._live
        if live is not None and self._state is ConnectionState.READY:
            self._requests.send_all(live.session.request)
            live.flush()
        try:
            async with asyncio.timeout(limit):
                result = await future
        except TimeoutError:
            raise RequestTimeout(f"{self.name}: {method} got no answer in {limit:g}s") from None
        finally:
            self._requests.withdraw(entry)
        return convert_result(result, result_type)

    # -- the runner --------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping():
                live = await self._session()
                if self._stopping():
                    return
                delay = self._next_delay(live)
                if delay is None:
                    return
                self._set_state(
                    ConnectionState.RECONNECTING,
                    attempt=self._backoff.attempt,
                    delay=delay,
                    reason=live.reason,
                    error=live.error,
                )
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # reconnect() may cut the wait short
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        except Exception as exc:  # a bug in the actor: end visibly rather than hang
            _log.exception("= %s: runner failed", self.name)
            self._finish(exc)

    def _next_delay(self, live: Live) -> float | None:
        """The pause before the next attempt, or ``None`` after finishing for good."""
        self._backoff.session_ended(live.updates > 0)
        hint = live.reconnect
        if hint is Reconnect.NEVER or (hint is Reconnect.LATER and self.config.raise_on_later):
            self._finish(live.error)
            return None
        delay = self._backoff.next_delay()
        if delay is None:
            self._finish(live.error or TransportError(f"{self.name}: attempts exhausted"))
            return None
        if hint is Reconnect.NOW:
            return 0.0
        if hint is Reconnect.LATER:
            return max(delay, self.config.later_delay)
        return delay

    async def _session(self) -> Live:
        """One socket from connect to end; returns it with why it ended."""
        cfg = self.config
        self._set_state(ConnectionState.CONNECTING, attempt=self._backoff.attempt)
        live = Live(self, self._handler.open_session(), self._sink, self._direct)
        try:
            live.conn = await self._connector.connect(
                self.url,
                live,
                timeout=cfg.connect_timeout,
                headers=cfg.headers,
                max_message_bytes=cfg.max_message_bytes,
            )
        except MassiveError as exc:
            reconnect = Reconnect.NEVER if isinstance(exc, AuthError) else Reconnect.BACKOFF
            live.fail(exc, "connect_failed", reconnect)
            return live
        self._live = live
        writer = asyncio.get_running_loop().create_task(live.write_loop())
        try:
            await self._serve(live)
        finally:
            self._live = None
            self._bytes_before += live.conn.bytes_received
            await live.shutdown(writer, cfg.close_timeout)
            self._session_lost(live)
        return live

    async def _serve(self, live: Live) -> None:
        self._set_state(ConnectionState.AUTHENTICATING)
        self._handle(live, live.session.on_open())
        live.flush()
        await asyncio.wait(
            [live.ready, live.ended, live.stop],
            timeout=self.config.auth_timeout,
            return_when="FIRST_COMPLETED",
        )
        if live.stop.done():
            return  # closing (aclose, or a server notice): never READY now
        if not live.ready.done():
            live.fail(
                RequestTimeout(f"{self.name}: not authenticated in {self.config.auth_timeout:g}s"),
                "auth_timeout",
            )
        elif not live.ended.done():
            self._on_ready(live)
            await asyncio.wait([live.ended, live.stop], return_when="FIRST_COMPLETED")

    def _on_ready(self, live: Live) -> None:
        self.sessions += 1
        self._set_state(ConnectionState.READY)
        topics = self._store.restart()
        for chunk in _chunks(topics, self.config.batch_size):
            self._handle(live, live.session.subscribe(chunk))
        self._requests.send_all(live.session.request)
        live.flush()
        live.open_fast_path()
        live.start_timers(self.config)
        self._arm_ack(live)

    def _session_lost(self, live: Live) -> None:
        self._ready.clear()
        live.session.connection_lost()
        self._store.restart()  # every topic is pending again until the next session acks it
        self._requests.pending.fail_all(
            TransportError(f"{self.name}: connection lost with the request in flight")
        )

    # -- from the socket ---------------------------------------------------------------

    def sink_failed(self, error: Exception) -> None:
        """The update sink raised (called by :class:`Live`): count, log, go on."""
        self.sink_errors += 1
        _log.error("= %s: update sink failed: %r", self.name, error, exc_info=error)

    def receive(self, live: Live, data: bytes | str, binary: bool) -> None:
        """A message the session must look at (called by :class:`Live`)."""
        try:
            incoming = live.session.receive(data, binary)
        except Exception as exc:
            live.fail(ProtocolError(f"{self.name}: protocol handler failed: {exc!r}"), "handler")
            return
        self._handle(live, incoming)
        live.flush()

    def _handle(self, live: Live, incoming: list[Incoming]) -> None:
        for item in incoming:
            if type(item) is Update:
                live.update(item.payload, item.topic)
            elif isinstance(item, SubscriptionResult):
                self._settled(live, item)
            elif isinstance(item, Response):
                self._requests.pending.resolve(item.request_id, item.result, item.error)
            elif isinstance(item, Ready):
                if not live.ready.done():
                    live.ready.set_result(None)
            elif isinstance(item, Pong):
                live.pong()
            elif isinstance(item, AuthRejected):
                error = AuthError(f"{self.name}: authentication refused: {item.message}")
                live.fail(error, "auth_failed", Reconnect.NEVER)
            elif isinstance(item, Disconnect):
                self._on_notice(live, item)
            elif isinstance(item, Unknown):
                self.unknown_messages += 1
                _log.debug("< %s: unknown message %s", self.name, item.preview)

    def _on_notice(self, live: Live, notice: Disconnect) -> None:
        _log.info("< %s: server ends the session: %s", self.name, notice.reason)
        error = Disconnected(
            f"{self.name}: {notice.reason}: {notice.message}".rstrip(": "), reason=notice.reason
        )
        live.note(error, notice.reason, notice.reconnect)
        live.request_stop()

    def _settled(self, live: Live, result: SubscriptionResult) -> None:
        losses: dict[Hashable, dict[str, str]] = {}
        if result.refused:
            _log.warning("< %s: refused %s", self.name, dict(result.refused))
            store = self._store
            for topic, reason in result.refused.items():
                if store.state(topic) is not None:  # still wanted: its owners lose it
                    for owner in store.owners_of(topic):
                        losses.setdefault(owner, {})[topic] = reason
        delta, done = self._store.settle(result.op, result.acked, result.refused, result.unanswered)
        if delta:
            self._send_delta(delta)
        if self._on_refused is not None:
            for owner, lost in losses.items():
                try:
                    self._on_refused(owner, lost)
                except Exception as exc:  # a callback's bug must not end the session
                    _log.error("= %s: refusal callback failed: %r", self.name, exc, exc_info=exc)
        for confirmation in done:
            future = self._waiting.pop(confirmation, None)
            if future is not None and not future.done():
                future.set_result(None)
        self._arm_ack(live)

    # -- subscriptions and requests ------------------------------------------------------

    def _send_delta(self, delta: Any) -> None:
        live = self._live
        if live is None or self._state is not ConnectionState.READY:
            return  # the store remembers; the next session subscribes it all
        for chunk in _chunks(delta.subscribe, self.config.batch_size):
            self._handle(live, live.session.subscribe(chunk))
        for chunk in _chunks(delta.unsubscribe, self.config.batch_size):
            self._handle(live, live.session.unsubscribe(chunk))
        live.flush()
        self._arm_ack(live)

    def _arm_ack(self, live: Live) -> None:
        live.cancel_ack()
        if self._store.pending:
            live.arm_ack(self.config.ack_timeout, self._ack_expired)

    def _ack_expired(self, live: Live) -> None:
        results = live.session.expire_subscriptions()
        if not any(isinstance(r, SubscriptionResult) for r in results):
            # Nothing was in flight, yet topics wait: settle them as unanswered.
            store = self._store
            stuck = [t for t in store.upstream if store.state(t) is TopicState.PENDING]
            results = [SubscriptionResult("subscribe", unanswered=tuple(sorted(stuck)))]
        self._handle(live, results)
        live.flush()

    async def _confirm(self, confirmation: Confirmation, limit: float | None) -> None:
        if not confirmation.done:
            future = asyncio.get_running_loop().create_future()
            self._waiting[confirmation] = future
            if limit is None:
                limit = self._attempt_budget() + self.config.ack_timeout
            try:
                async with asyncio.timeout(limit):
                    await future
            except TimeoutError:
                raise RequestTimeout(
                    f"{self.name}: no answer to the subscription in {limit:g}s",
                    topics=confirmation.topics,
                ) from None
            finally:
                self._waiting.pop(confirmation, None)
                self._store.forget(confirmation)
        if confirmation.refused:
            reasons = "; ".join(f"{t}: {r}" for t, r in confirmation.refused.items())
            raise SubscriptionRefused(f"refused: {reasons}", topics=list(confirmation.refused))
        if confirmation.unanswered:
            raise RequestTimeout("the server did not answer", topics=confirmation.unanswered)

    # -- state and events ----------------------------------------------------------------

    def _set_state(self, state: ConnectionState, **details: Any) -> None:
        previous, self._state = self._state, state
        if state is ConnectionState.READY:
            self._ready.set()
        event = ConnectionEvent(state, previous, **details)
        _log.debug("= %s: %s", self.name, event)
        self._events.emit(event)

    def _finish(self, error: BaseException | None) -> None:
        """CLOSED for good: fail every waiter with ``error`` (or StreamClosed)."""
        if self._state is ConnectionState.CLOSED:
            return
        self._closing = True
        self.error = error
        failure = error or StreamClosed(f"{self.name}: closed")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(failure)
        self._waiting.clear()
        self._requests.fail_waiting(failure)
        self._requests.pending.fail_all(StreamClosed(f"{self.name}: closed"))
        self._set_state(ConnectionState.CLOSED, error=error, reason=_reason_of(error))

    def _stopping(self) -> bool:  # a method: mypy would narrow the attribute in _run
        return self._closing

    def _raise_if_closed(self) -> None:
        if self._state is ConnectionState.CLOSED or self._closing:
            if self.error is not None:
                raise self.error
            raise StreamClosed(f"{self.name}: closed")

    def _attempt_budget(self) -> float:
        """Seconds one successful attempt needs at most: connect plus auth."""
        return self.config.connect_timeout + self.config.auth_timeout


def _reason_of(error: BaseException | None) -> str:
    if error is None:
        return ""
    if isinstance(error, Disconnected):
        return error.reason
    if isinstance(error, AuthError):
        return "auth_failed"
    return type(error).__name__


def _topic_list(topics: Iterable[str]) -> list[str]:
    if isinstance(topics, str | bytes):
        raise TypeError("pass a collection of topics, not a single string")
    return list(dict.fromkeys(topics))


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + size])
