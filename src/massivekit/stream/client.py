"""``massivekit.StreamClient``: the Massive WebSocket stream, resilient and fast.

One client is one connection to one (feed, cluster): the generic
:class:`~massivekit.transport.connection.Connection` actor speaking the
Massive protocol (:mod:`massivekit.transport.handlers.massive`), whose
frames are decoded by the client's own
:class:`~massivekit.models.FrameDecoder` and published, one batch per frame,
to bounded :class:`~massivekit.stream.dispatch.Dispatcher` buffers. The
socket reader never waits on a consumer: a consumer that falls behind loses
batches under its overflow policy (or fails, under ``ERROR_AND_CLOSE``),
and the drops are counted.

What the official client does and this one does not: reconnect instantly
with no backoff, end on a normal close, count reconnects for life, lose
subscriptions made just before a drop, let ``A.*`` drop ``AM.*``, run the
user's callback inline on the socket reader.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

from massivekit._loop import run as run_loop
from massivekit.auth import ApiKey, get_logger, redact_url
from massivekit.config import API_KEY_ENV, Feed, Market, StreamConfig
from massivekit.errors import ConfigError, MassiveError, RequestTimeout, StreamClosed
from massivekit.models import Event, FrameDecodeError, FrameDecoder, UnknownEvent
from massivekit.protocol.client import DEFAULT_BATCH
from massivekit.stream.callbacks import Callback, CallbackRegistry, Selector
from massivekit.stream.dispatch import Consumer, Dispatcher, Overflow
from massivekit.stream.metrics import LAG_MS, MetricsHook, StreamStats
from massivekit.transport.connection import Connection, ConnectionConfig
from massivekit.transport.events import ConnectionEvent, ConnectionState, EventStream
from massivekit.transport.handlers.massive import MassiveHandler
from massivekit.transport.live import Direct, MessageSink
from massivekit.transport.socket import SocketConnector, default_connector

__all__ = ["Batch", "StreamClient", "StreamOptions", "resolve_endpoint"]

_log = get_logger("massivekit.stream")

Batch = list[Event | UnknownEvent]
"""One frame's events, typed, in the order they came."""

DEFAULT_OWNER: Final = "client"
_OUTCOMES: Final = frozenset(
    {ConnectionState.READY, ConnectionState.RECONNECTING, ConnectionState.CLOSED}
)


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """The less common knobs of a :class:`StreamClient`.

    Attributes:
        transport: timeouts, heartbeat, silence watchdog, backoff, and the
            pause after ``max_connections`` (``later_delay``, 60 s).
        connector: the WebSocket library adapter (picows if installed, else
            aiohttp); for a Unix socket, made with its ``unix_path``.
        typed: make the default consumer of typed batches (``async for batch
            in client``); without it frames are decoded only for callbacks
            and extra consumers.
        batch_size: topics per subscribe action.
        lag_every: measure the lag (now minus the newest event's timestamp)
            once per this many frames.
        metrics_interval: seconds between pushes of the stats to the metrics hook.
        start_timeout: seconds ``async with`` waits for the first attempt's
            outcome (the connect and auth timeouts together by default).
        coalesce: a typed batch holds every event received since the consumer
            last took one (one iteration per wake-up, however many frames
            arrived meanwhile); ``False``: one batch per frame. Buffers still
            count frames: ``maxsize`` and drops are in frames either way.
    """

    transport: ConnectionConfig = field(default_factory=ConnectionConfig)
    connector: SocketConnector | None = None
    typed: bool = True
    batch_size: int = DEFAULT_BATCH
    lag_every: int = 64
    metrics_interval: float = 1.0
    start_timeout: float | None = None
    coalesce: bool = True


def resolve_endpoint(
    feed: Feed | str, market: Market | str | None, url: str | None
) -> tuple[str, Market]:
    """The WebSocket URL and cluster of a client.

    Args:
        feed: a :class:`Feed`, its name (``"delayed"``) or any host (``"host:port"``).
        market: the cluster; with ``url``, taken from its path when omitted.
        url: a full ``ws://``/``wss://`` URL (the mock, the proxy).

    Returns:
        ``(url, market)``.

    Raises:
        ConfigError: a URL that is not ``ws``/``wss``, or no way to tell the market.
    """
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ConfigError(f"stream URL must be ws:// or wss://, not {redact_url(url)!r}")
        if market is None:
            try:
                market = Market(parts.path.strip("/"))
            except ValueError:
                raise ConfigError(
                    f"cannot tell the market from {redact_url(url)!r}: pass market=..."
                ) from None
        return url, Market(market)
    cluster = Market(market or Market.STOCKS)
    return f"wss://{_feed_host(feed)}/{cluster.value}", cluster


def _unix_connector(path: str, connector: SocketConnector | None) -> SocketConnector:
    """The default connector, over the Unix socket at ``path``.

    Raises:
        ConfigError: an empty path, or a connector of the caller's (which
            cannot be told the path: it takes it itself).
    """
    if not path:
        raise ConfigError("unix_path is empty")
    if connector is not None:
        raise ConfigError(
            "unix_path with options.connector: give the path to the connector "
            "(picows_connector(unix_path=...)) and pass url=..., or leave the connector out"
        )
    return default_connector(unix_path=path)


def _feed_host(feed: Feed | str) -> str:
    if isinstance(feed, Feed):
        return feed.value
    try:
        return Feed[feed.upper()].value
    except KeyError:
        return feed.removeprefix("wss://").removeprefix("ws://").strip("/")


def _api_key(api_key: str | ApiKey | None) -> ApiKey:
    if api_key is None:
        return StreamConfig.from_env().api_key  # read now, never at import
    try:
        return ApiKey.coerce(api_key)
    except ValueError:
        raise ConfigError(f"empty API key: pass api_key=... or set {API_KEY_ENV}") from None


class StreamClient:
    """A Massive stream of typed events for one (feed, cluster).

    Args:
        api_key: the key (``MASSIVE_API_KEY`` is read when omitted).
        feed: real-time, delayed, business, launchpad... or any host.
        market: the cluster (``"stocks"`` by default; from the URL path with ``url``).
        url: connect here instead (``ws://127.0.0.1:PORT/stocks``).
        unix_path: connect over this Unix stream socket instead of TCP (the
            proxy's ``--unix``, for programs on its host: no TCP stack). The
            URL then defaults to ``ws://localhost/<market>``; its host only
            fills the ``Host`` header, and ``feed`` is not used. The default
            connector is made for the path; to pick the library, leave this
            out and pass ``options.connector=aiohttp_connector(unix_path=...)``
            with a ``url``.
        maxsize: batches each consumer buffers.
        overflow: what a full buffer does (drop oldest, drop newest, error and close).
        on_max_connections: on Massive's ``max_connections`` (another holder of the
            key took the slot): ``"backoff"`` waits ``transport.later_delay``
            (60 s) and retries, ``"raise"`` ends the stream with
            :class:`~massivekit.errors.Disconnected`.
        metrics: a hook receiving frames, events, drops, reconnects and lag.
        options: less common knobs (:class:`StreamOptions`).

    Raises:
        ConfigError: no key, a bad URL, a market that cannot be told, an
            empty ``unix_path``, or ``unix_path`` with ``options.connector``.
    """

    def __init__(
        self,
        api_key: str | ApiKey | None = None,
        *,
        feed: Feed | str = Feed.REAL_TIME,
        market: Market | str | None = None,
        url: str | None = None,
        unix_path: str | os.PathLike[str] | None = None,
        maxsize: int = 10_000,
        overflow: Overflow = Overflow.DROP_OLDEST,
        on_max_connections: Literal["backoff", "raise"] = "backoff",
        metrics: MetricsHook | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        if on_max_connections not in ("backoff", "raise"):
            raise ConfigError(
                f"on_max_connections must be 'backoff' or 'raise', not {on_max_connections!r}"
            )
        self.options = options or StreamOptions()
        endpoint, self.market = resolve_endpoint(feed, market, url)
        connector = self.options.connector
        self.unix_path = None if unix_path is None else os.fspath(unix_path)
        """The Unix socket connected to (``None``: TCP)."""
        where = redact_url(endpoint)
        if self.unix_path is not None:
            connector = _unix_connector(self.unix_path, connector)
            if url is None:
                endpoint = f"ws://localhost/{self.market.value}"
            where = f"unix:{self.unix_path}"
        self._stats = StreamStats()
        self._raw_frames = 0  # frames seen while nothing decoded them
        self._metrics = metrics
        self._decoder: FrameDecoder[Event] = FrameDecoder(self.market)
        self._typed: Dispatcher[Batch] = Dispatcher(
            maxsize=maxsize, overflow=overflow, metrics=metrics, coalesce=self.options.coalesce
        )
        self._raw: Dispatcher[bytes | str] = Dispatcher(
            maxsize=maxsize, overflow=overflow, metrics=metrics
        )
        self._default: Consumer[Batch] | None = (
            self._typed.consumer(name="default") if self.options.typed else None
        )
        self._decode = self.options.typed
        # Bound once: the hot path runs per frame.
        self._decode_frame = self._decoder.decode
        self._lag_countdown = self.options.lag_every
        self._publish_raw = False
        # The direct path (see _bind_direct) steps aside while this is set.
        self._direct_off = not self._decode
        self._direct_done = [0, 0]  # frames, events of past bindings of the direct path
        self._direct_counts: Callable[[], tuple[int, int]] = _no_counts
        self._callbacks = CallbackRegistry()
        self._callback_task: asyncio.Task[None] | None = None
        self._metrics_timer: asyncio.TimerHandle | None = None
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        transport = dataclasses.replace(
            self.options.transport, raise_on_later=on_max_connections == "raise"
        )
        self._conn = Connection(
            endpoint,
            MassiveHandler(_api_key(api_key), self.market, batch_size=self.options.batch_size),
            on_update=self._on_frame,
            direct=_DirectPath(self),
            config=transport,
            connector=connector,
            on_event=self._on_event,
            name=f"{self.market.value}@{where}",
        )

    def __repr__(self) -> str:
        return f"StreamClient({self._conn.name!r}, {self.state.value})"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The connection's state."""
        return self._conn.state

    @property
    def url(self) -> str:
        """The endpoint (it may carry a token: log it through ``redact_url``)."""
        return self._conn.url

    @property
    def connection(self) -> Connection:
        """The underlying connection actor (events, subscription store)."""
        return self._conn

    async def connect(self, *, wait: bool = True) -> None:
        """Start the connection; by default wait for the first attempt's outcome.

        Returns once the first session is READY, or once the first attempt
        failed in a way worth retrying (the client then retries in the
        background, with backoff, and :meth:`events` tells how it goes).

        Raises:
            AuthError: the key was refused (terminal).
            Disconnected: ``max_connections`` with ``on_max_connections="raise"``.
            RequestTimeout: no outcome within ``options.start_timeout``.
        """
        if self._started:
            return
        self._started = True
        if self._callbacks:
            self._start_callbacks()
        self._schedule_metrics()
        if not wait:
            self._conn.start()
            return
        try:
            await self._first_outcome()
        except BaseException:
            await self.aclose()
            raise

    async def _first_outcome(self) -> None:
        outcome: asyncio.Future[ConnectionEvent] = asyncio.get_running_loop().create_future()

        def on_event(event: ConnectionEvent) -> None:
            if event.state in _OUTCOMES and not outcome.done():
                outcome.set_result(event)

        limit = self.options.start_timeout
        if limit is None:
            transport = self.options.transport
            limit = transport.connect_timeout + transport.auth_timeout
        self._conn.add_listener(on_event)
        try:
            self._conn.start()
            async with asyncio.timeout(limit):
                event = await outcome
        except TimeoutError:
            raise RequestTimeout(f"{self._conn.name}: no outcome within {limit:g}s") from None
        finally:
            self._conn.remove_listener(on_event)
        if event.state is ConnectionState.CLOSED:
            raise event.error or StreamClosed(f"{self._conn.name}: closed")

    async def aclose(self) -> None:
        """Close the connection; consumers drain what they hold, then end. Idempotent."""
        await self._conn.aclose()
        self._typed.close()
        self._raw.close()
        if self._metrics_timer is not None:
            self._metrics_timer.cancel()
            self._metrics_timer = None
            self._flush_metrics()
        task, self._callback_task = self._callback_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(
        self,
        *topics: str | Iterable[str],
        confirm: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
        owner: object = DEFAULT_OWNER,
    ) -> None:
        """Subscribe ``topics`` (``"T.*"``, ``"Q.AAPL"``...), effective at once.

        Works in any state: while reconnecting, the topics are remembered and
        subscribed by the next session. Each prefix is its own wildcard
        (``A.*`` does not cover ``AM.*``).

        Args:
            topics: topics, or collections of them.
            confirm: wait for the server's acks.
            timeout: seconds to wait when confirming.
            owner: who holds the topics; the unsubscribe goes upstream only
                when the last owner of a topic gives it up.

        Raises:
            SubscriptionRefused: (confirm) refused topics, named in ``.topics``.
            RequestTimeout: (confirm) no answer in time.
            AuthError, Disconnected, StreamClosed: the stream ended.
        """
        await self._conn.subscribe(_flatten(topics), owner=owner, confirm=confirm, timeout=timeout)

    async def unsubscribe(
        self, *topics: str | Iterable[str], owner: object = DEFAULT_OWNER
    ) -> None:
        """Give ``topics`` up for ``owner`` (upstream when nobody holds them any more).

        Raises:
            StreamClosed: the stream is closed.
        """
        await self._conn.unsubscribe(_flatten(topics), owner=owner)

    @property
    def subscriptions(self) -> frozenset[str]:
        """Every topic held by some owner."""
        return self._conn.subscriptions.topics

    @property
    def refused(self) -> dict[str, str]:
        """Topics the server refused, with its reasons."""
        return dict(self._conn.subscriptions.refused)

    # -- consuming ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Batch]:
        """The default consumer: typed batches (every event received since the last batch).

        Raises:
            StreamClosed: the client was made with ``options.typed=False``, or
                was never started (use ``async with`` or :meth:`connect`).
        """
        if not self._started:
            raise StreamClosed("not started: use `async with StreamClient(...)` or connect()")
        if self._default is None:
            raise StreamClosed("this client has no default consumer (options.typed=False)")
        return self._default

    def consumer(
        self, *, maxsize: int | None = None, overflow: Overflow | None = None, name: str = ""
    ) -> Consumer[Batch]:
        """Another independent consumer of typed batches (broadcast: it sees every batch)."""
        self._decode = True
        self._set_direct_off(self._publish_raw)
        return self._typed.consumer(maxsize=maxsize, overflow=overflow, name=name)

    def raw(
        self, *, maxsize: int | None = None, overflow: Overflow | None = None, name: str = "raw"
    ) -> Consumer[bytes | str]:
        """A consumer of the frames as received (JSON arrays, undecoded)."""
        self._publish_raw = True
        self._set_direct_off(True)
        return self._raw.consumer(maxsize=maxsize, overflow=overflow, name=name)

    def on(self, selector: Selector, callback: Callback | None = None) -> Any:
        """Call ``callback`` with every event of a class or topic (usable as a decorator).

        Callbacks run in a task of the client, fed by a buffer like any
        consumer: a slow callback costs drops, never the connection. They
        do not subscribe anything by themselves.

        Args:
            selector: an event class (``EquityTrade``; subclasses match), or a
                topic (``"T.AAPL"``, ``"T.*"``, ``"*"`` for every event).
            callback: a function or coroutine function of one event.

        Returns:
            ``callback``, or a decorator when it is omitted.
        """
        if callback is None:

            def decorate(fn: Callback) -> Callback:
                self.on(selector, fn)
                return fn

            return decorate
        self._callbacks.add(selector, callback)
        if self._started and self._callback_task is None:
            self._start_callbacks()
        return callback

    def off(self, selector: Selector, callback: Callback) -> bool:
        """Remove a callback; ``False`` if it was not registered."""
        return self._callbacks.remove(selector, callback)

    def reconnect(self) -> None:
        """Drop the session and open a new one at once; every subscription is kept.

        Raises:
            StreamClosed: the client is closed.
        """
        self._conn.reconnect()

    def events(self, maxsize: int = 256) -> EventStream:
        """Connection events from now on: connecting, ready, reconnecting(n), closed."""
        return self._conn.events(maxsize)

    def add_listener(self, callback: Callable[[ConnectionEvent], None]) -> None:
        """Call ``callback`` with every connection event (synchronously)."""
        self._conn.add_listener(callback)

    def run(
        self,
        handler: Callable[[Batch], Awaitable[None] | None] | None = None,
        *,
        subscriptions: Sequence[str] = (),
    ) -> None:
        """Connect, subscribe and feed ``handler`` every batch until stopped (blocking).

        For scripts: runs its own event loop. It returns after :meth:`stop`
        (from any thread) or Ctrl-C, and raises the stream's terminal error.

        Raises:
            AuthError, Disconnected: the stream ended for good.
        """
        try:
            run_loop(self._run(handler, subscriptions))
        except KeyboardInterrupt:
            _log.info("= %s: interrupted", self._conn.name)

    def stop(self) -> None:
        """End :meth:`run` (thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stop_now)

    def _stop_now(self) -> None:
        if self._default is not None:
            self._default.close()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    async def _run(
        self, handler: Callable[[Batch], Awaitable[None] | None] | None, topics: Sequence[str]
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        async with self:
            if topics:
                await self.subscribe(*topics)
            if handler is None or self._default is None:
                await self._until_stopped()
                return
            async for batch in self._default:
                result = handler(batch)
                if isinstance(result, Awaitable):
                    await result

    async def _until_stopped(self) -> None:
        stopped = self._stopped
        assert stopped is not None

        def on_event(event: ConnectionEvent) -> None:
            if event.state is ConnectionState.CLOSED and not stopped.done():
                stopped.set_result(None)

        self._conn.add_listener(on_event)
        if self.state is ConnectionState.CLOSED:
            on_event(ConnectionEvent(ConnectionState.CLOSED, ConnectionState.CLOSED))
        await stopped  # bounded by stop(), Ctrl-C or the end of the stream
        if self._conn.error is not None:
            raise self._conn.error

    # -- the hot path ------------------------------------------------------------------

    def _on_frame(self, frame: Any, topic: str | None) -> None:
        """One data frame from the socket reader: decode, publish; never blocks.

        Frames and events are counted by the decoder; ``stats`` reads them.
        """
        self._stats.last_frame_at = time.monotonic()
        if self._publish_raw:
            self._raw.publish(frame)
            if not self._decode:
                self._raw_frames += 1
                return
        try:
            batch = self._decode_frame(frame)
        except FrameDecodeError:
            return  # counted by the decoder (malformed_frames)
        # Looked up per call: the dispatcher rebinds ``publish`` as consumers come and go.
        self._typed.publish(batch)
        self._lag_countdown -= 1
        if not self._lag_countdown:
            self._lag_countdown = self.options.lag_every
            if batch:
                self._sample_lag(batch[-1])

    def _bind_direct(
        self, fallback: MessageSink, failed: Callable[[Exception], None]
    ) -> Direct | None:
        """How the socket reader takes this READY session's frames (a ``DirectSink``).

        Why: at 10 events per frame the general path (adapter → session's
        plain-update check → ``_on_frame`` → ``FrameDecoder.decode`` →
        publish) spent a fifth of each frame's time outside msgspec. Here the
        socket reader itself decodes each frame with the bare data-only
        msgspec decoder and appends the batch to a list: per frame, one
        Python call (picows' own callback) and one C call, as in the barest
        picows listener. After each read the batches are counted and
        published together (the consumers' policies applied as if one by
        one). Statuses and acks (which the data-only decoder refuses) and
        frames that do not validate take the general path, after what the
        read gathered so far, so the order holds; the latter are recovered
        and counted there. With raw consumers the general path takes all.
        """
        self._fold_direct()
        if self._direct_off:
            return None
        typed = self._typed
        stats = self._stats
        clock = time.monotonic
        lag_every = self.options.lag_every
        sample = self._sample_lag
        gathered: list[Batch] = []
        frames = events = sampled = 0

        def flush() -> None:
            nonlocal frames, events, sampled
            if not gathered:
                return
            frames += len(gathered)
            events += sum(map(len, gathered))
            stats.last_frame_at = clock()
            try:  # a metrics hook's error (drops, lag) must not end the session
                typed.publish_many(gathered)  # looked up per call: rebound as consumers change
                if frames - sampled >= lag_every:
                    sampled = frames
                    newest = gathered[-1]
                    if newest:
                        sample(newest[-1])
            except Exception as exc:
                failed(exc)
            finally:
                gathered.clear()

        def counts() -> tuple[int, int]:
            return frames, events

        def taken() -> int:
            return frames

        self._direct_counts = counts
        return Direct(self._decoder.decode_data, gathered, flush, taken)

    def _set_direct_off(self, off: bool) -> None:
        if off != self._direct_off:
            self._direct_off = off
            self._conn.refresh_direct()

    def _fold_direct(self) -> None:
        """Add the last session's direct-path counts to the totals."""
        done = self._direct_done
        for i, count in enumerate(self._direct_counts()):
            done[i] += count
        self._direct_counts = _no_counts

    def _sample_lag(self, event: Any) -> None:
        stamp = getattr(event, "timestamp", None)
        # Unix ms only: a few kinds stamp µs or ns (LULD, NOI, some FMV).
        if isinstance(stamp, int) and 0 < stamp < 10**14:
            lag = self._stats.observe_lag(stamp)
            if self._metrics is not None:
                self._metrics.histogram(LAG_MS, lag, market=self.market.value)

    # -- events, callbacks, metrics ----------------------------------------------------

    def _on_event(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.READY:
            self._stats.mark_connected()
            if self._conn.sessions > 1:
                self._stats.reconnects += 1
        elif event.previous is ConnectionState.READY:
            self._stats.mark_disconnected()
        if event.state is ConnectionState.CLOSED:
            self._typed.close(event.error)
            self._raw.close(event.error)
        if event.state is ConnectionState.RECONNECTING:
            _log.info("= %s: %s", self._conn.name, event)

    def _start_callbacks(self) -> None:
        self._decode = True
        self._set_direct_off(self._publish_raw)
        consumer = self._typed.consumer(name="callbacks")
        self._callback_task = asyncio.get_running_loop().create_task(self._run_callbacks(consumer))

    async def _run_callbacks(self, consumer: Consumer[Batch]) -> None:
        try:
            async for batch in consumer:
                await self._callbacks.run(batch)
        except MassiveError as exc:
            # The stream ended for good; iteration and subscribe raise it too.
            _log.info("= %s: callbacks stopped: %r", self._conn.name, exc)

    def _schedule_metrics(self) -> None:
        if self._metrics is None:
            return
        loop = asyncio.get_running_loop()
        self._metrics_timer = loop.call_later(self.options.metrics_interval, self._metrics_tick)

    def _metrics_tick(self) -> None:
        self._flush_metrics()
        self._schedule_metrics()

    def _flush_metrics(self) -> None:
        stats = self.stats
        if self._metrics is not None:
            try:
                stats.flush(self._metrics, market=self.market.value)
                self._typed.report()
                self._raw.report()
            except Exception as exc:  # a broken hook must not stop the ticks or aclose()
                _log.error("= %s: metrics hook failed: %r", self._conn.name, exc, exc_info=exc)

    @property
    def stats(self) -> StreamStats:
        """Live counters: frames, events, bytes, drops, reconnects, lag, connected since."""
        stats = self._stats
        decoder = self._decoder
        frames, events = self._direct_counts()
        done = self._direct_done
        stats.frames = decoder.frames + self._raw_frames + done[0] + frames
        stats.events = decoder.events + done[1] + events
        stats.bytes = self._conn.bytes_received
        stats.drops = self.drops
        stats.unknown_events = decoder.unknown_events
        stats.decode_errors = decoder.malformed_frames
        return stats

    @property
    def drops(self) -> int:
        """Batches lost to overflow policies, over every consumer."""
        return self._typed.drops + self._raw.drops

    def snapshot(self) -> dict[str, int | float | None]:
        """The stats now, as a plain dict."""
        return self.stats.snapshot()


def _no_counts() -> tuple[int, int]:
    return 0, 0


class _DirectPath:
    """The client's :class:`~massivekit.transport.live.DirectSink` (kept off its public face)."""

    __slots__ = ("_client",)

    def __init__(self, client: StreamClient) -> None:
        self._client = client

    def bind(self, fallback: MessageSink, failed: Callable[[Exception], None]) -> Direct | None:
        return self._client._bind_direct(fallback, failed)


def _flatten(topics: Iterable[str | Iterable[str]]) -> list[str]:
    out: list[str] = []
    for item in topics:
        if isinstance(item, str):
            out.extend(t.strip() for t in item.split(",") if t.strip())
        else:
            out.extend(item)
    return out
