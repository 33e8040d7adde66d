"""The Massive REST client: async and sync faces over one core.

::

    from massivekit.rest import AsyncRestClient, RestClient, Pagination, CallOptions

See :class:`AsyncRestClient` for the arguments, :mod:`massivekit.errors` for
what can go wrong, and :func:`to_datetime` for Massive's integer timestamps.

The clients (and aiohttp, and the generated endpoint table behind them) are
imported on first use, so that ``massivekit mock`` or a stream-only program
does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from massivekit.rest._frames import MissingDependency, to_arrow, to_pandas, to_polars
from massivekit.rest._paginate import AsyncPager, SyncPager
from massivekit.rest._ratelimit import RateLimit
from massivekit.rest._timestamps import from_datetime, to_datetime
from massivekit.rest._types import CallOptions, Page, Pagination, RawResponse

if TYPE_CHECKING:
    from massivekit.rest._client import AsyncRestClient, RestClient

    RESTClient = RestClient

__all__ = [
    "AsyncPager",
    "AsyncRestClient",
    "CallOptions",
    "MissingDependency",
    "Page",
    "Pagination",
    "RESTClient",
    "RateLimit",
    "RawResponse",
    "RestClient",
    "SyncPager",
    "from_datetime",
    "to_arrow",
    "to_datetime",
    "to_pandas",
    "to_polars",
]

_LAZY = {
    "AsyncRestClient": "AsyncRestClient",
    "RestClient": "RestClient",
    "RESTClient": "RestClient",  # the official client's name: migrating is a change of import
}


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("massivekit.rest._client"), target)
    globals()[name] = value
    return value
