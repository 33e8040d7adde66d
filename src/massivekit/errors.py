"""The one error tree of massivekit.

Every failure a user can see is a :class:`MassiveError`; foreign exceptions
(aiohttp, msgspec, OSError, asyncio) are mapped at the boundary and chained
with ``from``. Messages never contain an API key or token: every message
passes through :func:`massivekit.auth.redact`.

::

    MassiveError
    ├── ConfigError                  bad or missing configuration (no key, bad URL)
    ├── TransportError               the network failed: refused, reset, TLS, DNS
    │   └── RequestTimeout           a connect/read/total deadline passed
    ├── ApiError                     Massive answered with an error status
    │   ├── BadRequest               400: a parameter Massive rejected
    │   ├── AuthError                401/403, or a stream's ``auth_failed``
    │   ├── NotFound                 404
    │   ├── RateLimited              429: carries ``retry_after`` (seconds)
    │   └── ServerError              5xx
    ├── DeserializeError             a body or frame that does not parse or fit its model
    ├── ProtocolError                a peer broke the Massive WebSocket protocol
    │   ├── SubscriptionRefused      ``not authorized`` / invalid topic; carries ``topics``
    │   └── Disconnected             the server ended the session with a status
    │                                (``max_connections``, ``force_disconnect``,
    │                                ``slow_consumer``) or a close code
    └── StreamClosed                 an operation on a stream that is closed for good
        └── BufferOverflow           a consumer fell behind under the ErrorAndClose policy

Attributes (``None`` where they do not apply): ``status`` (HTTP status),
``request_id`` (Massive's ``X-Request-Id``), ``retry_after`` (seconds),
``topics`` (stream topics concerned), ``body_preview`` (redacted, short).
"""

from __future__ import annotations

from collections.abc import Sequence

from massivekit.auth import redact

PREVIEW_CHARS = 200


def preview(body: bytes | str | None, limit: int = PREVIEW_CHARS) -> str | None:
    """A short, redacted, printable excerpt of a response body or frame."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


class MassiveError(Exception):
    """Base of every massivekit error.

    Args:
        message: what went wrong, in words (redacted before it is stored).
        status: the HTTP status, where there was one.
        request_id: Massive's request id, where there was one.
        retry_after: seconds the server asked to wait, where it did.
        topics: the stream topics concerned, where any.
        body: the response body or frame, kept only as a short redacted preview.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        topics: Sequence[str] = (),
        body: bytes | str | None = None,
    ) -> None:
        self.message = redact(message)
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.topics = tuple(topics)
        self.body_preview = preview(body)
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}s")
        if self.topics:
            parts.append(f"topics={','.join(self.topics)}")
        if self.body_preview:
            parts.append(f"body={self.body_preview!r}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigError(MassiveError):
    """The configuration is missing or invalid (no API key, a malformed URL)."""


class TransportError(MassiveError):
    """The network failed before Massive could answer."""


class RequestTimeout(TransportError):
    """A connect, read or total deadline passed."""


class ApiError(MassiveError):
    """Massive answered with an error status."""


class BadRequest(ApiError):
    """400: Massive rejected a parameter."""


class AuthError(ApiError):
    """The key was refused: HTTP 401/403, or ``auth_failed`` on a stream."""


class NotFound(ApiError):
    """404: no such resource or route."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` says how long to wait, if known."""


class ServerError(ApiError):
    """5xx: Massive failed; usually worth a retry."""


class DeserializeError(MassiveError):
    """A response body or stream frame does not parse, or does not fit its model."""


class ProtocolError(MassiveError):
    """A peer broke the Massive WebSocket protocol, or sent a status we must act on."""


class SubscriptionRefused(ProtocolError):
    """A subscription was refused (``not authorized``, an invalid or unknown topic)."""


class Disconnected(ProtocolError):
    """The server ended the session (``max_connections``, ``slow_consumer``, a close code).

    Args:
        reason: the Massive status or a description of the close.
        close_code: the WebSocket close code, where one came.
    """

    def __init__(self, message: str, *, reason: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.close_code = close_code


class StreamClosed(MassiveError):
    """The stream is closed for good; make a new client."""


class BufferOverflow(StreamClosed):
    """A consumer's bounded buffer filled under the ``ErrorAndClose`` overflow policy."""


_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    429: RateLimited,
}


def error_for_status(status: int) -> type[ApiError]:
    """The :class:`ApiError` subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _STATUS_ERRORS.get(status, ApiError)
