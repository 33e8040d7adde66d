"""massivekit: a fast, typed, async toolkit for Massive.com (formerly Polygon.io) market data."""

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

__all__ = [
    "ApiError",
    "ApiKey",
    "AuthError",
    "BadRequest",
    "BufferOverflow",
    "ConfigError",
    "DeserializeError",
    "Disconnected",
    "Feed",
    "Market",
    "MassiveError",
    "NotFound",
    "ProtocolError",
    "RateLimited",
    "RequestTimeout",
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
]
