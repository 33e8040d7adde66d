"""massivekit: a fast, typed, async toolkit for Massive.com (formerly Polygon.io) market data."""

from typing import TYPE_CHECKING

from massivekit._version import __version__
from massivekit.auth import ApiKey, redact, redact_url
from massivekit.config import Feed, Market, RestConfig, RetryPolicy, StreamConfig, Timeouts
from massivekit.errors import (
    ApiError,
    AuthError,
    BadRequest,
    BufferOverflow,
    ConfigError,
    DeserializeError,
    Disconnected,
    MassiveError,
    NotFound,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamClosed,
    SubscriptionRefused,
    TransportError,
)
from massivekit.rest._ratelimit import RateLimit
from massivekit.rest._timestamps import to_datetime
from massivekit.rest._types import CallOptions, Pagination, RawResponse

if TYPE_CHECKING:
    from massivekit.rest import AsyncRestClient, RestClient


def __getattr__(name: str) -> object:
    # The clients pull in aiohttp and the generated endpoint tables (~0.35 s):
    # load them when first asked for, not on `import massivekit`.
    if name in ("AsyncRestClient", "RestClient"):
        import massivekit.rest as rest

        return getattr(rest, name)
    raise AttributeError(f"module 'massivekit' has no attribute {name!r}")


__all__ = [
    "ApiError",
    "ApiKey",
    "AsyncRestClient",
    "AuthError",
    "BadRequest",
    "BufferOverflow",
    "CallOptions",
    "ConfigError",
    "DeserializeError",
    "Disconnected",
    "Feed",
    "Market",
    "MassiveError",
    "NotFound",
    "Pagination",
    "ProtocolError",
    "RateLimit",
    "RateLimited",
    "RawResponse",
    "RequestTimeout",
    "RestClient",
    "RestConfig",
    "RetryPolicy",
    "ServerError",
    "StreamClosed",
    "StreamConfig",
    "SubscriptionRefused",
    "Timeouts",
    "TransportError",
    "__version__",
    "redact",
    "redact_url",
    "to_datetime",
]
