"""Configuration value objects.

Nothing here reads the environment at import time: :meth:`RestConfig.from_env`
and :meth:`StreamConfig.from_env` read ``MASSIVE_API_KEY`` when they are
called. Every config object is a frozen value; derive a changed copy with
:func:`dataclasses.replace`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from massivekit.auth import ApiKey
from massivekit.errors import ConfigError

API_KEY_ENV = "MASSIVE_API_KEY"
DEFAULT_REST_URL = "https://api.massive.com"


class Market(enum.StrEnum):
    """A WebSocket cluster: the path of the stream URL (``wss://host/<market>``)."""

    STOCKS = "stocks"
    OPTIONS = "options"
    FOREX = "forex"
    CRYPTO = "crypto"
    INDICES = "indices"
    FUTURES = "futures"
    FUTURES_CME = "futures/cme"
    FUTURES_CBOT = "futures/cbot"
    FUTURES_NYMEX = "futures/nymex"
    FUTURES_COMEX = "futures/comex"

    @property
    def family(self) -> Market:
        """The cluster whose events this one carries (every futures venue is futures)."""
        return Market.FUTURES if self.value.startswith("futures") else self


class Feed(enum.StrEnum):
    """A WebSocket host. Real-time and delayed share one connection limit per key."""

    REAL_TIME = "socket.massive.com"
    DELAYED = "delayed.massive.com"
    BUSINESS = "business.massive.com"
    DELAYED_BUSINESS = "delayed-business.massive.com"
    LAUNCHPAD = "launchpad.massive.com"
    NASDAQ = "nasdaqfeed.massive.com"
    POLYFEED = "polyfeed.massive.com"
    POLYFEED_PLUS = "polyfeedplus.massive.com"
    STARTER_FEED = "starterfeed.massive.com"
    EDGX_BUSINESS = "edgx-business.massive.com"
    IEX_BUSINESS = "iex-business.massive.com"
    DELAYED_EDGX_BUSINESS = "delayed-edgx-business.massive.com"
    DELAYED_NASDAQ_LAST_SALE_BUSINESS = "delayed-nasdaq-last-sale-business.massive.com"
    DELAYED_NASDAQ_BASIC = "delayed-nasdaq-basic-business.massive.com"
    DELAYED_FULL_MARKET_BUSINESS = "delayed-fullmarket-business.massive.com"
    FULL_MARKET_BUSINESS = "fullmarket-business.massive.com"
    NASDAQ_LAST_SALE_BUSINESS = "nasdaq-last-sale-business.massive.com"
    NASDAQ_BASIC_BUSINESS = "nasdaq-basic-business.massive.com"


def _key_from_env(env: Mapping[str, str] | None) -> ApiKey:
    source = os.environ if env is None else env
    value = source.get(API_KEY_ENV, "").strip()
    if not value:
        raise ConfigError(f"no API key: pass api_key=... or set {API_KEY_ENV}")
    return ApiKey(value)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed for each phase of a request or connection."""

    connect: float = 10.0
    read: float = 30.0
    total: float | None = 60.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded attempts."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 20.0
    retry_statuses: frozenset[int] = frozenset({500, 502, 503, 504})
    rate_limit_budget: float = 60.0
    """Total seconds a call may spend waiting on 429 ``Retry-After`` before raising."""


@dataclass(frozen=True, slots=True)
class RestConfig:
    """Everything a REST client needs; ``api_key`` is always an :class:`ApiKey`."""

    api_key: ApiKey
    base_url: str = DEFAULT_REST_URL
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    gzip: bool = True
    max_connections: int = 32
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> RestConfig:
        """Build a config whose key comes from ``MASSIVE_API_KEY``.

        Raises:
            ConfigError: the variable is unset or empty.
        """
        return cls(api_key=_key_from_env(env), **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Where and how to open a stream: one connection per (feed, market)."""

    api_key: ApiKey
    market: Market = Market.STOCKS
    feed: Feed = Feed.REAL_TIME
    url: str | None = None
    """A full ``ws://``/``wss://`` URL; overrides ``feed`` and ``market`` for the address."""

    @property
    def endpoint(self) -> str:
        """The WebSocket URL this config connects to."""
        return self.url or f"wss://{self.feed.value}/{self.market.value}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> StreamConfig:
        """Build a config whose key comes from ``MASSIVE_API_KEY``.

        Raises:
            ConfigError: the variable is unset or empty.
        """
        return cls(api_key=_key_from_env(env), **overrides)  # type: ignore[arg-type]
