"""The WebSocket adapter contract, and its aiohttp implementation.

The connection actor (:mod:`massivekit.transport.connection`) sees a socket
only through three small protocols, pushed rather than pulled, so that a
pull-based library (aiohttp: ``await ws.receive()``) and a callback-based one
(picows: ``on_ws_frame``) fit the same shape:

* :class:`SocketConnector` opens a connection and binds a listener to it;
* :class:`SocketConnection` sends, pings, closes and aborts;
* :class:`SocketListener` is told of every message, every pong and, exactly
  once, of the end of the connection.

Contract every adapter keeps:

* ``on_message`` is called for each TEXT and BINARY message, in order, from
  the event loop thread, and never awaited: the listener must not block;
* ``on_closed(code, reason, error)`` is called exactly once, whoever ends the
  connection; ``code`` is the peer's close code, or ``None`` when the
  connection ended without a close frame (1006); ``error`` is a
  :class:`~massivekit.errors.MassiveError` when the connection failed,
  ``None`` for an orderly close;
* server pings are answered by the adapter; ``on_pong`` fires for each pong;
* ``abort()`` drops the connection at once, without a close frame; the owner
  still awaits ``close()`` afterwards, which then only releases resources;
  ``close()`` is idempotent and always safe to await;
* ``connect`` raises :class:`~massivekit.errors.TransportError` (refused,
  reset, DNS, TLS), :class:`~massivekit.errors.RequestTimeout` (deadline
  passed) or :class:`~massivekit.errors.AuthError` (the upgrade answered
  401/403); nothing foreign escapes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import aiohttp

from massivekit.auth import get_logger, redact_url
from massivekit.errors import (
    AuthError,
    MassiveError,
    ProtocolError,
    RequestTimeout,
    TransportError,
)

DEFAULT_MAX_MESSAGE: Final = 16 * 2**20
CLOSE_TIMEOUT: Final = 5.0
"""Seconds ``close()`` waits for the peer's close frame before dropping the socket."""

_log = get_logger("massivekit.transport.socket")


class SocketListener(Protocol):
    """What a connection reports to its owner (implemented by the connection actor)."""

    def on_message(self, data: bytes | str, binary: bool) -> None:
        """One TEXT or BINARY message, in order; never awaited."""

    def on_closed(self, code: int | None, reason: str, error: BaseException | None) -> None:
        """The connection ended; called exactly once."""

    def on_pong(self) -> None:
        """A pong arrived (the answer to :meth:`SocketConnection.ping`)."""


class SocketConnection(Protocol):
    """One open WebSocket connection."""

    async def send(self, data: bytes | str) -> None:
        """Send ``data`` as one TEXT frame.

        Raises:
            TransportError: the connection is closed or failed.
        """

    def ping(self) -> None:
        """Send a WebSocket ping; the pong arrives through ``on_pong``."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with a close frame (if still open) and release every resource."""

    def abort(self) -> None:
        """Drop the connection at once, without a close frame."""

    def divert(
        self,
        deliver: Callable[[bytes | str, bool], None],
        flush: Callable[[], None] | None = None,
        *,
        convert: Callable[[bytes | str], Any] | None = None,
        into: list[Any] | None = None,
    ) -> None:
        """Deliver TEXT and BINARY messages to ``deliver`` instead of ``on_message``.

        The hot-path hook: once a session is ready, its owner can hand the
        socket reader the shortest way to its consumer. Pongs and the close
        still reach the listener.

        Args:
            deliver: called with each message, in order.
            flush: called after each run of messages the reader delivered
                together (one socket read; with aiohttp, each message), so
                the owner can hand them on at once.
            convert: with ``into``: each TEXT message's ``convert(data)`` is
                appended to ``into`` by the reader itself (no Python call of
                the owner's per message); a message ``convert`` raises
                :class:`ValueError` for goes to ``deliver`` instead, after
                ``flush``, so the order holds.
            into: the list ``convert`` fills; ``flush`` empties it.
        """

    @property
    def bytes_received(self) -> int:
        """Bytes read so far (picows: from the socket, frame headers included;
        aiohttp: message payloads)."""
        ...


class SocketConnector(Protocol):
    """Opens connections; one connector serves any number of them."""

    async def connect(
        self,
        url: str,
        listener: SocketListener,
        *,
        timeout: float,  # noqa: ASYNC109 (the fixed adapter contract: a connect deadline)
        headers: Mapping[str, str] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
    ) -> SocketConnection:
        """Open ``url`` and deliver its messages to ``listener``.

        Args:
            url: a ``ws://`` or ``wss://`` URL.
            listener: told of every message, pong and the close.
            timeout: seconds allowed for TCP, TLS and the upgrade together.
            headers: extra headers for the upgrade request.
            max_message_bytes: a larger message fails the connection (1009).

        Returns:
            The open connection, already reading.

        Raises:
            TransportError: the connection could not be made.
            RequestTimeout: ``timeout`` passed first.
            AuthError: the upgrade was answered 401 or 403.
        """
        ...


def default_connector(*, unix_path: str | os.PathLike[str] | None = None) -> SocketConnector:
    """The fastest adapter installed: picows when it is, else aiohttp.

    ``bench/stream_ingest.py`` measures both; picows leads on small frames
    and they tie on large ones (see the README).

    Args:
        unix_path: connect to this Unix stream socket instead of the URL's
            host and port (see :class:`AiohttpConnector`); ``None``: TCP.
    """
    try:
        from massivekit.transport.socket_picows import picows_connector
    except ImportError:  # picows is optional: aiohttp always is there
        return aiohttp_connector(unix_path=unix_path)
    return picows_connector(unix_path=unix_path)


def aiohttp_connector(*, unix_path: str | os.PathLike[str] | None = None) -> SocketConnector:
    """A :class:`SocketConnector` on aiohttp (one ``ClientSession`` per connection).

    Args:
        unix_path: see :class:`AiohttpConnector`.
    """
    return AiohttpConnector(unix_path=unix_path)


class AiohttpConnector:
    """Opens aiohttp WebSocket connections.

    Each connection owns its ``ClientSession`` so that its lifetime, and the
    release of its sockets, is exactly the connection's.

    Args:
        unix_path: connect to this Unix stream socket (``aiohttp.UnixConnector``)
            instead of the URL's host and port: the proxy's ``--unix``, for
            programs on its host, skips the TCP stack. The URL keeps its path
            (``ws://localhost/stocks``); its host only fills the ``Host``
            header. ``None``: TCP.
    """

    def __init__(self, *, unix_path: str | os.PathLike[str] | None = None) -> None:
        self.unix_path = None if unix_path is None else os.fspath(unix_path)
        """The Unix socket connected to, or ``None`` for TCP."""

    async def connect(
        self,
        url: str,
        listener: SocketListener,
        *,
        timeout: float,  # noqa: ASYNC109 (the fixed adapter contract: a connect deadline)
        headers: Mapping[str, str] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
    ) -> SocketConnection:
        """See :meth:`SocketConnector.connect`."""
        path = self.unix_path
        session = aiohttp.ClientSession(
            connector=None if path is None else aiohttp.UnixConnector(path=path)
        )
        try:
            async with asyncio.timeout(timeout):
                ws = await session.ws_connect(
                    url,
                    headers=dict(headers or {}),
                    # Pongs must reach the listener (its heartbeat waits on
                    # them), and autoping swallows them: pings are answered
                    # by the reader instead.
                    autoping=False,
                    heartbeat=None,
                    max_msg_size=max_message_bytes,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT),
                    # TEXT frames arrive as bytes: msgspec decodes bytes directly.
                    decode_text=False,
                )
        except BaseException as exc:
            await session.close()
            raise _connect_error(url, exc, path) from exc
        connection = AiohttpConnection(session, ws, listener)
        connection.start()
        return connection


def connect_target(url: str, unix_path: str | None) -> str:
    """Where a connection goes, for messages: the redacted URL, and the Unix
    socket when there is one (a path is no secret, and the one thing to check
    when the connection is refused)."""
    where = redact_url(url)
    return where if unix_path is None else f"{where} via unix:{unix_path}"


def _connect_error(url: str, exc: BaseException, unix_path: str | None = None) -> BaseException:
    """Map a failure of ``ws_connect`` into the massivekit tree (others pass through)."""
    where = connect_target(url, unix_path)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        kind = AuthError if exc.status in (401, 403) else TransportError
        return kind(f"WebSocket upgrade of {where} refused", status=exc.status)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return RequestTimeout(f"connecting to {where} timed out")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TransportError(f"cannot connect to {where}: {type(exc).__name__}: {exc}")
    return exc


class AiohttpConnection:
    """One aiohttp WebSocket, read by a task this object owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse[bool],
        listener: SocketListener,
    ) -> None:
        self._session = session
        self._ws = ws
        self._listener = listener
        self._deliver: Callable[[bytes | str, bool], None] = listener.on_message
        self._flush: Callable[[], None] = _nothing
        self._received = 0
        self._reader: asyncio.Task[None] | None = None
        self._pings: set[asyncio.Task[None]] = set()
        self._notified = False
        self._closing = False
        self._released = False

    def start(self) -> None:
        """Start the reader task (called once by the connector)."""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def send(self, data: bytes | str) -> None:
        """See :meth:`SocketConnection.send`."""
        payload = data.encode() if isinstance(data, str) else data
        try:
            await self._ws.send_frame(payload, aiohttp.WSMsgType.TEXT)
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            raise TransportError(f"send failed: {type(exc).__name__}: {exc}") from exc

    def ping(self) -> None:
        """See :meth:`SocketConnection.ping`."""
        if self._ws.closed or self._released:
            return
        # aiohttp's ping is a coroutine; the task is owned and reaped in close().
        task = asyncio.get_running_loop().create_task(self._ping())
        self._pings.add(task)
        task.add_done_callback(self._pings.discard)

    async def _ping(self) -> None:
        try:
            await self._ws.ping()
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            # A failing write means a dead socket: the reader sees it too.
            _log.debug("= ping failed: %s", type(exc).__name__)

    def divert(
        self,
        deliver: Callable[[bytes | str, bool], None],
        flush: Callable[[], None] | None = None,
        *,
        convert: Callable[[bytes | str], Any] | None = None,
        into: list[Any] | None = None,
    ) -> None:
        """See :meth:`SocketConnection.divert`."""
        done = flush or _nothing
        self._flush = done
        if convert is None or into is None:
            self._deliver = deliver
            return
        append = into.append

        def take(data: bytes | str, binary: bool) -> None:
            if not binary:  # as on picows: only TEXT messages are converted
                try:
                    append(convert(data))
                    return
                except ValueError:
                    pass
            done()
            deliver(data, binary)

        self._deliver = take

    @property
    def bytes_received(self) -> int:
        """See :attr:`SocketConnection.bytes_received`."""
        return self._received

    def abort(self) -> None:
        """See :meth:`SocketConnection.abort`."""
        self._notify(None, "aborted", None)
        # No public abort in aiohttp: closing the response drops the transport.
        self._ws._response.close()
        if self._reader is not None:
            self._reader.cancel()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """See :meth:`SocketConnection.close`."""
        self._closing = True
        try:
            if not self._ws.closed:
                try:
                    await self._ws.close(code=code, message=reason.encode())
                except (aiohttp.ClientError, OSError, RuntimeError, TimeoutError):
                    self._ws._response.close()
            self._notify(self._ws.close_code, reason, None)
        finally:
            await self._release()

    async def _release(self) -> None:
        tasks = [t for t in (self._reader, *self._pings) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if not self._released:
            self._released = True
            await self._session.close()

    def _notify(self, code: int | None, reason: str, error: BaseException | None) -> None:
        if not self._notified:
            self._notified = True
            self._listener.on_closed(code, reason, error)

    async def _read(self) -> None:
        code: int | None = None
        reason = ""
        error: BaseException | None = None
        try:
            code, reason, error = await self._pump()
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            error = TransportError(f"read failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
        except Exception as exc:  # a listener's bug: end the connection and surface it
            error = exc
            self._ws._response.close()
        finally:
            # When close() is under way it reports the end itself, with the peer's code.
            if not self._closing:
                self._notify(code, reason, error)

    async def _pump(self) -> tuple[int | None, str, BaseException | None]:
        """Read until the connection ends; returns ``(code, reason, error)``."""
        ws = self._ws
        listener = self._listener
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is text:
                self._received += len(msg.data)
                self._deliver(msg.data, False)
                self._flush()
            elif kind is binary:
                self._received += len(msg.data)
                self._deliver(msg.data, True)
                self._flush()
            elif kind is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            elif kind is aiohttp.WSMsgType.PONG:
                listener.on_pong()
            elif kind is aiohttp.WSMsgType.CLOSE:
                return msg.data, msg.extra or "", None
            elif kind is aiohttp.WSMsgType.ERROR:
                return ws.close_code, "", _read_error(msg.data)
            else:  # CLOSING (we are closing) or CLOSED (the TCP connection ended)
                return None, "", None


def _nothing() -> None:
    pass


def _read_error(exc: object) -> MassiveError:
    """Map the exception of an aiohttp ERROR message."""
    if isinstance(exc, aiohttp.WebSocketError):
        error: MassiveError = ProtocolError(f"WebSocket error {exc.code}: {exc}")
    else:
        error = TransportError(f"connection failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, BaseException):
        error.__cause__ = exc
    return error
