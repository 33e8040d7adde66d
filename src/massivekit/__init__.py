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
    from massivekit.proxy.server import ProxyServer
    from massivekit.rest import AsyncRestClient, RestClient
    from massivekit.stream import Overflow, StreamClient, StreamOptions

_LAZY = {
    "AsyncRestClient": "massivekit.rest",
    "RestClient": "massivekit.rest",
    "StreamClient": "massivekit.stream",
    "StreamOptions": "massivekit.stream",
    "Overflow": "massivekit.stream",
    "ProxyServer": "massivekit.proxy.server",
}


def __getattr__(name: str) -> object:
    # The clients pull in aiohttp, picows and the generated endpoint tables
    # (~0.35 s): load them when first asked for, not on `import massivekit`.
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
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
    "Overflow",
    "Pagination",
    "ProtocolError",
    "ProxyServer",
    "RateLimit",
    "RateLimited",
    "RawResponse",
    "RequestTimeout",
    "RestClient",
    "RestConfig",
    "RetryPolicy",
    "ServerError",
    "StreamClient",
    "StreamClosed",
    "StreamConfig",
    "StreamOptions",
    "SubscriptionRefused",
    "Timeouts",
    "TransportError",
    "__version__",
    "redact",
    "redact_url",
    "to_datetime",
]
