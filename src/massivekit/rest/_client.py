"""The public REST clients: generated endpoint methods on top of the cores.

:class:`AsyncRestClient` = the generated async endpoint mixin + the async
core; :class:`RestClient` = the generated sync mixin + the sync face of the
same core. The endpoint methods only build a path and wire parameters and
call ``_get``/``_list``; everything else lives in the core.
"""

from __future__ import annotations

from massivekit.rest._core import AsyncRestCore
from massivekit.rest._endpoints import AsyncEndpoints
from massivekit.rest._endpoints_sync import SyncEndpoints
from massivekit.rest._sync import SyncRestCore

__all__ = ["AsyncRestClient", "RestClient"]


class AsyncRestClient(AsyncEndpoints, AsyncRestCore):
    """The async Massive REST client: every endpoint, typed, paginated, resilient.

    Make one per application and share it: it pools connections.

    ::

        async with AsyncRestClient() as client:           # key from MASSIVE_API_KEY
            async for trade in client.list_trades("AAPL", timestamp="2024-01-02"):
                ...

    Args:
        api_key: the key (``str`` or :class:`~massivekit.ApiKey`); defaults to
            the config's, else ``MASSIVE_API_KEY`` read now.
        base_url: where Massive is (default ``https://api.massive.com``);
            ``base`` is accepted too, as the official client names it.
        config: a :class:`~massivekit.config.RestConfig` (timeouts, retry
            policy, gzip, pool size, default headers).
        rate_limit: keep a plan limit on our side, e.g. ``RateLimit(5, per=60)``.
        pagination: default for list calls: ``Pagination.AUTO`` (every page),
            ``Pagination.NONE``, ``Pagination.max_items(n)``, or a bool as in
            the official client.
        retries: retries after the first attempt (overrides the config's policy).
        connect_timeout: seconds to connect (overrides the config).
        read_timeout: seconds per socket read (overrides the config).
        sleep: the async sleep used for backoff and rate limiting (tests inject one).
        clock: monotonic seconds for deadlines and the rate limiter (tests inject one).
        env: where to look for ``MASSIVE_API_KEY`` (default ``os.environ``).

    Raises:
        ConfigError: no key was given nor found, or the base URL is not http(s).
    """


class RestClient(SyncEndpoints, SyncRestCore):
    """The blocking Massive REST client: the async client's core on a private loop thread.

    Same methods and arguments as :class:`AsyncRestClient`, without ``await``;
    list methods return iterators. Close it (``with`` or :meth:`close`) to
    stop its thread and its connections.

    ::

        with RestClient(api_key="...") as client:
            for trade in client.list_trades("AAPL", timestamp="2024-01-02"):
                ...

    Raises:
        ConfigError: no key was given nor found, or the base URL is not http(s).
    """
