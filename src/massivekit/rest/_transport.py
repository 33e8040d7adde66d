"""The HTTP layer: one aiohttp session per client, one method, no policy.

:class:`Transport` is the interface the core sees (``send`` and ``aclose``);
:class:`AiohttpTransport` implements it over a pooled
:class:`aiohttp.ClientSession`. It sends exactly one request and returns the
status, headers and the whole body, inflated; retries, deadlines and decoding
are the core's business. Every foreign exception is mapped here into
massivekit's tree, chained with ``from``:

* ``asyncio.TimeoutError`` (connect or read deadline) -> :class:`RequestTimeout`;
* ``aiohttp.ClientError``, ``OSError`` -> :class:`TransportError`;
* a body that does not inflate -> :class:`DeserializeError`.

Bodies are inflated by us, not by aiohttp: one ``zlib`` call over the whole
body is faster than streaming inflation, and big bodies go to a worker thread
(zlib releases the GIL), so that inflating page *n+1* overlaps the consumer's
work on page *n*.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
import yarl

from massivekit.auth import ApiKey, redact_url
from massivekit.config import Timeouts
from massivekit.errors import DeserializeError, RequestTimeout, TransportError

_THREAD_INFLATE_BYTES: Final = 128 * 1024
_GZIP_OR_ZLIB: Final = 32 + zlib.MAX_WBITS  # auto-detect a gzip or zlib header
_READ_BUFSIZE: Final = 1024 * 1024


@dataclass(frozen=True, slots=True, repr=False)
class Request:
    """One GET to send.

    Attributes:
        url: the absolute URL, already percent-encoded (it may carry a query).
        query: more query parameters to add, as wire strings.
        headers: the headers to send, but for ``Authorization``.
        api_key: the key, sent only as ``Authorization: Bearer`` by the transport
            (so that no header dict held anywhere contains it).
    """

    url: str
    query: Mapping[str, str] | None
    headers: Mapping[str, str]
    api_key: ApiKey

    def __repr__(self) -> str:
        return f"Request(GET {self.safe_url})"

    @property
    def safe_url(self) -> str:
        """The URL with its query, secrets redacted: what logs and errors may show."""
        url = yarl.URL(self.url, encoded=True)
        if self.query:
            url = url.update_query(self.query)
        return redact_url(str(url))


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers, the inflated body, and how long it took.

    Attributes:
        status: the HTTP status.
        headers: the response headers (case-insensitive lookups).
        body: the whole body, inflated.
        url: the request URL, secrets redacted.
        elapsed: seconds from sending to the last byte.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    elapsed: float

    @property
    def request_id(self) -> str | None:
        """Massive's ``X-Request-Id`` header, if it sent one."""
        return self.headers.get("X-Request-Id")


class Transport(Protocol):
    """The one-method interface between the core and the network."""

    async def send(self, request: Request) -> Response:
        """Send ``request`` once.

        Raises:
            TransportError: the network failed; RequestTimeout for a deadline.
            DeserializeError: the body could not be inflated.
        """
        ...

    async def aclose(self) -> None:
        """Release every connection; idempotent."""
        ...


class AiohttpTransport:
    """A pooled aiohttp session, opened on first use inside the running loop.

    Args:
        timeouts: ``connect`` bounds the TCP/TLS connect, ``read`` each socket read.
        max_connections: size of the connection pool.
    """

    def __init__(self, timeouts: Timeouts, max_connections: int) -> None:
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> aiohttp.ClientSession:
        # aiohttp binds a session to the running loop: open it on first use, not in __init__.
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeouts.connect, sock_read=self._timeouts.read
        )
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            read_bufsize=_READ_BUFSIZE,
            trust_env=False,
        )
        return self._session

    async def send(self, request: Request) -> Response:
        """Send ``request`` once; see :meth:`Transport.send`."""
        session = self._session or self._open()
        if asyncio.get_running_loop() is not self._loop:
            # aiohttp's pool belongs to the loop that opened it (asyncio.run() twice).
            raise TransportError("this client belongs to another event loop: make one per loop")
        url = yarl.URL(request.url, encoded=True)
        started = time.perf_counter()
        try:
            # The caller's headers never replace the key: Authorization is set last.
            sent = {**request.headers, "Authorization": f"Bearer {request.api_key.reveal()}"}
            async with session.get(url, params=request.query, headers=sent) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
        except TimeoutError as exc:
            raise RequestTimeout(f"GET {request.safe_url} timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"GET {request.safe_url} failed: {_describe(exc)}") from exc
        encoding = headers.get("Content-Encoding", "").lower()
        if encoding in ("gzip", "deflate", "x-gzip"):
            body = await _inflate(body, status, request)
        elapsed = time.perf_counter() - started
        return Response(status, headers, body, request.safe_url, elapsed)

    async def aclose(self) -> None:
        """Close the session and its pool; idempotent."""
        session, self._session = self._session, None
        if session is None:
            return
        if asyncio.get_running_loop() is self._loop:
            await session.close()
        else:
            session.detach()  # its pool lives on another (maybe closed) loop: leave it there


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _inflate(body: bytes, status: int, request: Request) -> bytes:
    try:
        if len(body) < _THREAD_INFLATE_BYTES:
            return zlib.decompress(body, _GZIP_OR_ZLIB)
        return await asyncio.to_thread(zlib.decompress, body, _GZIP_OR_ZLIB)
    except zlib.error as exc:
        raise DeserializeError(
            f"GET {request.safe_url}: compressed body does not inflate: {exc}", status=status
        ) from exc
