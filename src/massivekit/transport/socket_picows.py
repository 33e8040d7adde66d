"""The WebSocket adapter contract on picows, the fastest socket library we measured.

picows is callback-based: it parses frames in C and calls
``WSListener.on_ws_frame`` for each one, with no task and no queue in
between, so a message costs one Python call to reach the
:class:`~massivekit.transport.socket.SocketListener`. This module keeps the
contract of :mod:`massivekit.transport.socket` on top of it:

* messages are delivered as ``bytes`` (msgspec decodes bytes directly);
  fragmented messages are reassembled (Massive never fragments; a proxy
  might);
* picows answers pings itself; pongs reach ``on_pong``;
* a CLOSE from the peer is answered with the same code, then the socket is
  closed; ``on_closed`` fires exactly once, with the peer's code (``None``
  if the connection ended without a close frame) and, for a local failure
  (a frame over ``max_message_bytes``, a protocol violation, a listener that
  raised), a :class:`~massivekit.errors.MassiveError`;
* connect failures are mapped into the massivekit error tree;
* reads are paced: at most ``read_chunk`` bytes per read and one read per
  event-loop turn (see :class:`_ReadPacer`), so a flood cannot starve the
  consumers the messages are for.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import picows
from picows import WSCloseCode, WSFrame, WSMsgType, WSTransport

from massivekit.auth import get_logger
from massivekit.errors import AuthError, ProtocolError, RequestTimeout, TransportError
from massivekit.transport.socket import (
    CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE,
    SocketConnection,
    SocketConnector,
    SocketListener,
    connect_target,
)

__all__ = ["PicowsConnection", "PicowsConnector", "picows_connector"]

_log = get_logger("massivekit.transport.picows")

_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_CONTINUATION: Final = WSMsgType.CONTINUATION
_PONG: Final = WSMsgType.PONG
_CLOSE: Final = WSMsgType.CLOSE
_KNOWN_CODES: Final = frozenset(int(c.value) for c in WSCloseCode)
_AIOFASTNET: Final = importlib.util.find_spec("aiofastnet") is not None
"""Whether picows makes its connections with aiofastnet (its default when installed)."""
READ_CHUNK: Final = 128 * 1024
"""Default bytes per socket read: ~1,000 one-event frames, ~10 of 100 events.

Measured with bench/stream_ingest.py: unpaced, a flood makes single reads of
megabytes and the stream client drops to a tenth of its speed at one event
per frame; from 16 KiB to 256 KiB per read the rates differ by less than the
noise; 1 MiB is already worse."""


def picows_connector(
    *, read_chunk: int = READ_CHUNK, unix_path: str | os.PathLike[str] | None = None
) -> SocketConnector:
    """A :class:`~massivekit.transport.socket.SocketConnector` on picows.

    Args:
        read_chunk: most bytes read from the socket per event-loop turn; 0
            reads as picows does by default (as much as is queued, in one go).
        unix_path: see :class:`PicowsConnector`.
    """
    return PicowsConnector(read_chunk=read_chunk, unix_path=unix_path)


class PicowsConnector:
    """Opens picows WebSocket connections (one serves any number).

    Args:
        read_chunk: see :func:`picows_connector`.
        unix_path: connect to this Unix stream socket instead of the URL's
            host and port: the proxy's ``--unix``, for programs on its host,
            skips the TCP stack. The URL keeps its path
            (``ws://localhost/stocks``); its host only fills the ``Host``
            header. ``None``: TCP.
    """

    def __init__(
        self, *, read_chunk: int = READ_CHUNK, unix_path: str | os.PathLike[str] | None = None
    ) -> None:
        self._read_chunk = read_chunk
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
        """See :meth:`massivekit.transport.socket.SocketConnector.connect`.

        Raises:
            TransportError: the connection could not be made.
            RequestTimeout: ``timeout`` passed first.
            AuthError: the upgrade was answered 401 or 403.
        """
        path = self.unix_path
        extra: dict[str, Any] = {}
        if path is not None:
            _check_unix_loop(url, path)
            extra["socket_factory"] = lambda _: _connect_unix(path)
        adapter = PicowsConnection(listener, max_message_bytes, read_chunk=self._read_chunk)
        try:
            async with asyncio.timeout(timeout):
                await picows.ws_connect(
                    lambda: adapter,
                    url,
                    websocket_handshake_timeout=timeout,
                    extra_headers=dict(headers or {}),
                    max_frame_size=max_message_bytes,
                    # Pings are the connection actor's policy, not picows'.
                    enable_auto_ping=False,
                    enable_auto_pong=True,
                    # A listener that raises is reported through on_closed.
                    disconnect_on_exception=True,
                    logger_name="massivekit",
                    **extra,
                )
        except Exception as exc:
            adapter.release()
            raise _connect_error(url, exc, path) from exc
        return adapter


class _UnixSocket(socket.socket):
    """An ``AF_UNIX`` stream socket that takes TCP-level options as no-ops.

    picows sets ``TCP_NODELAY`` and ``TCP_QUICKACK`` on every connection it
    makes, and reads them back for its log line; on a Unix socket the kernel
    refuses both (``EOPNOTSUPP``) and the connection would never start. They
    mean nothing there (no Nagle, no delayed acks), so they are skipped. The
    transports of asyncio and of aiofastnet (picows' default) hand picows a
    wrapper of this very object; uvloop's own do not (see
    :func:`_check_unix_loop`).
    """

    def setsockopt(self, level: int, optname: int, *args: Any) -> None:
        """Skip ``IPPROTO_TCP`` options; set any other."""
        if level != socket.IPPROTO_TCP:
            super().setsockopt(level, optname, *args)

    def getsockopt(self, level: int, optname: int, *args: Any) -> Any:
        """``IPPROTO_TCP`` options read as 0 (zero bytes with ``buflen``); any other as is."""
        if level == socket.IPPROTO_TCP:
            return bytes(args[0]) if args else 0
        return super().getsockopt(level, optname, *args)


async def _connect_unix(path: str) -> socket.socket:
    """picows' ``socket_factory``: a socket already connected to ``path``."""
    sock = _UnixSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, path)
    except BaseException:  # refused, missing, or the connect deadline (cancelled)
        sock.close()
        raise
    return sock


def _check_unix_loop(url: str, path: str) -> None:
    """Refuse a Unix socket where picows' TCP options would reach the kernel.

    With aiofastnet (a dependency of picows, used by default) or asyncio's
    own loops, :class:`_UnixSocket` absorbs them. Without aiofastnet, on
    uvloop, picows would fail inside ``connection_made`` and the connect
    would hang until its deadline: say why at once instead.

    Raises:
        TransportError: neither aiofastnet nor an asyncio loop.
    """
    if _AIOFASTNET or isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
        return
    raise TransportError(
        f"cannot connect to {connect_target(url, path)}: picows needs aiofastnet or an "
        "asyncio loop for a Unix socket; install aiofastnet or use aiohttp_connector(unix_path=...)"
    )


def _connect_error(url: str, exc: BaseException, unix_path: str | None = None) -> Exception:
    """Map a failure of ``ws_connect`` into the massivekit tree."""
    where = connect_target(url, unix_path)
    if isinstance(exc, picows.WSHandshakeError):
        status = exc.response.status if exc.response is not None else None
        code = int(status) if status is not None else None
        kind = AuthError if code in (401, 403) else TransportError
        return kind(f"WebSocket upgrade of {where} refused", status=code)
    if isinstance(exc, TimeoutError):
        return RequestTimeout(f"connecting to {where} timed out")
    if isinstance(exc, picows.WSError | OSError | ValueError):
        # ValueError: picows rejects a malformed URL (WSInvalidURL) this way.
        return TransportError(f"cannot connect to {where}: {type(exc).__name__}: {exc}")
    return TransportError(f"cannot connect to {where}: {type(exc).__name__}")


class PicowsConnection(picows.WSListener):
    """One picows connection: its WSListener and the SocketConnection at once.

    picows calls the ``on_ws_*`` methods from the event loop; the owner calls
    ``send``/``ping``/``close``/``abort``.
    """

    def __init__(
        self, listener: SocketListener, max_message_bytes: int, *, read_chunk: int = 0
    ) -> None:
        super().__init__()
        self._read_chunk = read_chunk
        self._listener = listener
        self._max_message = max_message_bytes
        self._transport: WSTransport | None = None
        self._fragments: list[bytes] | None = None
        self._fragment_binary = False
        self._close_code: int | None = None
        self._close_reason = ""
        self._closing_locally = False
        self._error: BaseException | None = None
        self._notified = False
        self._writable: asyncio.Future[None] | None = None
        self._deliver: Callable[[bytes | str, bool], None] = listener.on_message
        self._pacer: _ReadPacer | None = None
        self._general = self.on_ws_frame  # the method, bound before any divert

    # -- picows callbacks ---------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        """picows: the upgrade succeeded."""
        self._transport = transport
        self._pacer = _ReadPacer.install(transport.underlying_transport, self._read_chunk)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """picows: one frame; the hot path is an unfragmented TEXT frame."""
        kind = frame.msg_type
        try:  # free in 3.11 unless it raises
            if kind is _TEXT and frame.fin:
                self._deliver(frame.get_payload_as_bytes(), False)
            elif kind is _BINARY and frame.fin:
                self._deliver(frame.get_payload_as_bytes(), True)
            elif kind is _PONG:
                self._listener.on_pong()
            elif kind is _CLOSE:
                self._on_close_frame(transport, frame.get_payload_as_bytes())
            else:
                self._on_fragment(transport, frame)
        except Exception as exc:
            # picows answers with CLOSE 1011 and disconnects; the listener
            # learns why from on_closed.
            self._note_error(exc)
            raise

    def _note_error(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """picows: the TCP connection is gone; tell the listener (once)."""
        self._wake_writer()
        error = self._error
        handshake = transport.close_handshake
        if error is None and not self._closing_locally and handshake is not None:
            # picows sent a CLOSE first that we did not ask for: it found a
            # protocol error (a frame over max_frame_size, a bad frame).
            sent = handshake.sent
            if sent is not None and not handshake.recv_then_sent:
                code = int(sent.code.value)
                error = ProtocolError(f"WebSocket error {code}: {sent.reason or 'local failure'}")
        self._notify(self._close_code, self._close_reason, error)

    def pause_writing(self) -> None:
        """picows: the send buffer passed its high-water mark."""
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """picows: the send buffer drained below its low-water mark."""
        self._wake_writer()

    # -- SocketConnection ---------------------------------------------------------

    async def send(self, data: bytes | str) -> None:
        """See :meth:`massivekit.transport.socket.SocketConnection.send`.

        Raises:
            TransportError: the connection is closed or closing.
        """
        transport = self._transport
        if transport is None or transport.is_disconnected or transport.is_close_frame_sent:
            raise TransportError("send failed: the connection is closed")
        transport.send(_TEXT, data.encode() if isinstance(data, str) else data)
        if self._writable is not None:
            # Backpressure: the kernel buffer is full; wait until it drains
            # (or the connection ends, which wakes this too).
            await asyncio.shield(self._writable)

    def ping(self) -> None:
        """See :meth:`massivekit.transport.socket.SocketConnection.ping`."""
        transport = self._transport
        if transport is not None and not transport.is_disconnected:
            transport.send_ping()

    def divert(
        self,
        deliver: Callable[[bytes | str, bool], None],
        flush: Callable[[], None] | None = None,
        *,
        convert: Callable[[bytes | str], Any] | None = None,
        into: list[Any] | None = None,
    ) -> None:
        """See :meth:`massivekit.transport.socket.SocketConnection.divert`.

        With ``convert``, picows calls a closure made here instead of
        :meth:`on_ws_frame` (it looks the method up on the instance per
        frame): a TEXT frame then costs one Python call, as in the barest
        picows listener.
        """
        self._deliver = deliver
        done = flush or _nothing
        if self._pacer is not None:
            self._pacer.after_read = flush
        self.__dict__.pop("on_ws_frame", None)  # back to the general method
        if convert is None or into is None:
            return
        append = into.append
        general = self._general
        text = _TEXT

        def on_ws_frame(transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is text and frame.fin:
                data = frame.get_payload_as_bytes()
                try:
                    append(convert(data))
                    return
                except ValueError:
                    pass
                except Exception as exc:
                    self._note_error(exc)
                    raise
                try:
                    done()
                    deliver(data, False)
                except Exception as exc:
                    self._note_error(exc)
                    raise
            else:
                done()
                general(transport, frame)

        self.on_ws_frame = on_ws_frame  # type: ignore[method-assign]

    @property
    def bytes_received(self) -> int:
        """See :attr:`massivekit.transport.socket.SocketConnection.bytes_received`."""
        return 0 if self._pacer is None else self._pacer.received

    def abort(self) -> None:
        """See :meth:`massivekit.transport.socket.SocketConnection.abort`."""
        self._notify(None, "aborted", None)
        if self._transport is not None:
            self._transport.disconnect(graceful=False)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """See :meth:`massivekit.transport.socket.SocketConnection.close`."""
        transport = self._transport
        if transport is None:
            return
        if not transport.is_disconnected:
            self._closing_locally = True
            if not transport.is_close_frame_sent:
                transport.send_close(_close_code(code), reason.encode())
            # The peer answers our CLOSE with its own and closes the TCP
            # connection (RFC 6455 7.1.1); do not wait for it forever.
            if not await self._wait_disconnected(CLOSE_TIMEOUT):
                transport.disconnect(graceful=False)
        # Also collects the failure picows keeps for wait_disconnected(), which
        # on_closed has already reported.
        await self._wait_disconnected(CLOSE_TIMEOUT)
        self._notify(self._close_code, reason, None)

    def release(self) -> None:
        """Drop the socket if a failed connect left one open (no notification)."""
        self._notified = True
        if self._transport is not None and not self._transport.is_disconnected:
            self._transport.disconnect(graceful=False)

    # -- internals --------------------------------------------------------------------

    def _on_close_frame(self, transport: WSTransport, payload: bytes) -> None:
        """The peer's CLOSE: remember its code, answer it, close the socket."""
        # Parsed from the payload: picows' enum rejects application codes (4000+).
        if len(payload) >= 2:
            self._close_code = int.from_bytes(payload[:2], "big")
            self._close_reason = payload[2:].decode("utf-8", "replace")
        if not transport.is_close_frame_sent:
            transport.send_close(_close_code(self._close_code or 1000))
        transport.disconnect()

    def _on_fragment(self, transport: WSTransport, frame: WSFrame) -> None:
        """Reassemble a fragmented message (RFC 6455 5.4)."""
        kind = frame.msg_type
        if kind is _TEXT or kind is _BINARY:
            self._fragments = [frame.get_payload_as_bytes()]
            self._fragment_binary = kind is _BINARY
            return
        if kind is not _CONTINUATION or self._fragments is None:
            return  # a PING (answered by picows) or a stray continuation
        self._fragments.append(frame.get_payload_as_bytes())
        size = sum(len(part) for part in self._fragments)
        if size > self._max_message:
            self._fragments = None
            self._error = ProtocolError(f"WebSocket message over {self._max_message} bytes")
            transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
            transport.disconnect()
            return
        if frame.fin:
            parts, self._fragments = self._fragments, None
            self._deliver(b"".join(parts), self._fragment_binary)

    async def _wait_disconnected(self, within: float) -> bool:
        transport = self._transport
        assert transport is not None
        try:
            async with asyncio.timeout(within):
                with contextlib.suppress(Exception):  # its failure is on_closed's news
                    await transport.wait_disconnected()
        except TimeoutError:
            return False
        return True

    def _wake_writer(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _notify(self, code: int | None, reason: str, error: BaseException | None) -> None:
        if not self._notified:
            self._notified = True
            _log.debug("= closed code=%s reason=%r error=%s", code, reason, type(error).__name__)
            self._listener.on_closed(code, reason, error)


class _ReadPacer(asyncio.BufferedProtocol):
    """Stands between the socket and picows' protocol to pace reads.

    Why: under a flood, picows' read buffer doubles whenever a read fills it,
    and the loop may read many times per turn, so one turn can parse several
    MB (tens of thousands of frames) before any consumer runs. Those bursts
    overflow the consumers' buffers and keep megabytes of decoded events
    waiting, cache-cold. Capping each read and yielding the loop after it
    (pause, then resume on the next turn) keeps the reader and its consumers
    in step. The reader still never waits on a consumer: only on one turn.

    It also tells the connection's owner when the frames of a read have all
    been delivered (``after_read``, see ``SocketConnection.divert``).
    """

    def __init__(self, inner: Any, transport: asyncio.Transport, chunk: int) -> None:
        self._inner = inner
        self._transport = transport
        self._pace = chunk > 0  # 0: no cap and no pause (it still counts and tells)
        self._chunk = chunk if chunk > 0 else 1 << 62
        self.after_read: Callable[[], None] | None = None
        """Called once picows has delivered the frames of each read."""
        self.received = 0
        """Bytes read."""
        self._paused = False
        self._offered = 0
        self._loop = asyncio.get_running_loop()
        self._get_buffer = inner.get_buffer
        self._buffer_updated = inner.buffer_updated

    @classmethod
    def install(cls, transport: asyncio.Transport, chunk: int) -> _ReadPacer | None:
        """Put a pacer between ``transport`` and its (picows) protocol.

        Args:
            transport: the socket's transport.
            chunk: most bytes per read (0: no cap).

        Returns:
            The pacer, or ``None`` if the protocol is not a buffered one.
        """
        protocol = transport.get_protocol()
        if isinstance(protocol, cls):
            return protocol
        if not hasattr(protocol, "get_buffer"):
            return None
        pacer = cls(protocol, transport, chunk)
        transport.set_protocol(pacer)
        return pacer

    def get_buffer(self, sizehint: int) -> memoryview:
        """picows' free read buffer, at most ``chunk`` bytes of it."""
        buffer: memoryview = self._get_buffer(sizehint)
        if len(buffer) > self._chunk:
            buffer = buffer[: self._chunk]
        self._offered = len(buffer)
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        """Let picows parse the read; after a full one, skip reading until the next turn."""
        self.received += nbytes
        self._buffer_updated(nbytes)
        if self.after_read is not None:
            self.after_read()
        # A read short of the buffer drained the socket: the loop turns anyway.
        if (
            self._pace
            and nbytes >= self._offered
            and not self._paused
            and not self._transport.is_closing()
        ):
            self._paused = True
            self._transport.pause_reading()
            self._loop.call_soon(self._resume)

    def _resume(self) -> None:
        self._paused = False
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def eof_received(self) -> bool | None:
        """Delegated to picows."""
        return self._inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        """Delegated to picows."""
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Delegated to picows."""
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Delegated to picows."""
        self._inner.resume_writing()


def _nothing() -> None:
    pass


def _close_code(code: int) -> WSCloseCode:
    """A close code for picows' ``send_close``.

    Its Python enum knows only the registered codes, but the C signature takes
    any integer, so application codes (3000-4999) pass through as they are.
    """
    if code in _KNOWN_CODES or 3000 <= code <= 4999:
        return cast(WSCloseCode, code)
    return WSCloseCode.OK
