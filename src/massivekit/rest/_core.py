"""The async core of the REST client: requests, retries, deadlines, decoding, paging.

Every endpoint method (generated, in :mod:`massivekit.rest._endpoints`) ends
in :meth:`AsyncRestCore._get` or :meth:`AsyncRestCore._list`; the sync client
runs this same core on a private loop thread. A call goes through layers
with one job each::

    _get / _list          build the request, decode the answer (or page)
      _send               deadline + retry loop (policy in _retry.RetryState)
        _attempt          rate limiter, then one request; map the call deadline
          Transport.send  one HTTP GET (aiohttp), foreign errors mapped

Debug logging (logger ``massivekit.rest``) marks direction: ``> GET url``
when a request leaves, ``< 200 in 12 ms, 50000 items, request_id=...`` when
its answer is decoded. URLs never carry the key (it travels in the
``Authorization`` header) and every record is redacted anyway.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, Final, Generic, Self, cast

from massivekit._version import __version__
from massivekit.auth import ApiKey, get_logger
from massivekit.config import RestConfig, Timeouts
from massivekit.errors import ConfigError, MassiveError, RequestTimeout, TransportError
from massivekit.rest._base import AsyncEndpointsBase
from massivekit.rest._decode import (
    decode,
    error_for_response,
    page_decoder,
    peek_next_url,
    value_decoder,
)
from massivekit.rest._paginate import AsyncPager
from massivekit.rest._query import encode_query, rebase, strip_secrets
from massivekit.rest._ratelimit import AsyncRateLimiter, Clock, RateLimit, Sleep
from massivekit.rest._retry import RetryState
from massivekit.rest._transport import AiohttpTransport, Request, Response, Transport
from massivekit.rest._types import CallOptions, Page, Pagination, RawResponse, T

log = get_logger("massivekit.rest")

_NO_OPTIONS: Final = CallOptions()
_USER_AGENT: Final = f"massivekit/{__version__}"


def resolve_config(
    api_key: str | ApiKey | None,
    *,
    config: RestConfig | None = None,
    base_url: str | None = None,
    retries: int | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> RestConfig:
    """The client's config: ``config`` (or defaults) with the explicit arguments applied.

    The key is ``api_key``, else the config's, else ``MASSIVE_API_KEY`` read now.

    Raises:
        ConfigError: no key anywhere, or a base URL that is not http(s).
    """
    if config is None:
        config = (
            RestConfig(api_key=ApiKey.coerce(api_key))
            if api_key is not None
            else RestConfig.from_env(env)
        )
    elif api_key is not None:
        config = replace(config, api_key=ApiKey.coerce(api_key))
    if base_url is not None:
        config = replace(config, base_url=base_url)
    if retries is not None:
        config = replace(config, retry=replace(config.retry, attempts=retries + 1))
    if connect_timeout is not None or read_timeout is not None:
        old = config.timeouts
        config = replace(
            config,
            timeouts=Timeouts(
                connect=old.connect if connect_timeout is None else connect_timeout,
                read=old.read if read_timeout is None else read_timeout,
                total=old.total,
            ),
        )
    if not config.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must be an http(s) URL, not {config.base_url!r}")
    return config


class AsyncRestCore(AsyncEndpointsBase):
    """The engine behind :class:`massivekit.AsyncRestClient` (see its docstring)."""

    def __init__(
        self,
        api_key: str | ApiKey | None = None,
        *,
        base_url: str | None = None,
        config: RestConfig | None = None,
        rate_limit: RateLimit | None = None,
        pagination: Pagination | bool = Pagination.AUTO,
        retries: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        base: str | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = resolve_config(
            api_key,
            config=config,
            base_url=base_url or base,
            retries=retries,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            env=env,
        )
        self.base_url = self.config.base_url.rstrip("/")
        self.pagination = _pagination(pagination)
        self._headers = _default_headers(self.config)
        self._transport: Transport = AiohttpTransport(
            self.config.timeouts, self.config.max_connections
        )
        self._sleep = sleep
        self._clock = clock
        self._draw = random.random
        self._limiter = (
            AsyncRateLimiter(rate_limit, clock=clock, sleep=sleep) if rate_limit else None
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- lifecycle ----------------------------------------------------------

    async def aclose(self) -> None:
        """Cancel any page prefetch in flight and close every pooled connection."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned prefetch must not warn at exit

    # -- what the generated endpoint methods call ---------------------------

    async def _get(  # type: ignore[override]
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = "results",
        raw: bool = False,
        options: CallOptions | None = None,
    ) -> T | RawResponse:
        """GET one object; see :meth:`AsyncEndpointsBase._get`."""
        opts = options or _NO_OPTIONS
        request = self._request(self.base_url + path, encode_query(params, opts.params), opts)
        response = await self._send(request, opts)
        if raw:
            return RawResponse(response.status, response.headers, response.body, response.url)
        decoded = decode(
            value_decoder(cast(Any, result), key),
            response.body,
            status=response.status,
            request_id=response.request_id,
            url=response.url,
        )
        value = decoded if key is None else decoded.value
        if log.isEnabledFor(logging.DEBUG):
            count = len(value) if isinstance(value, list) else int(value is not None)
            rid = response.request_id or (None if key is None else decoded.request_id)
            _log_answer(response, count, rid)
        return cast(T, value)

    def _list(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        item: type[T],
        key: str = "results",
        pagination: Pagination | None = None,
        options: CallOptions | None = None,
    ) -> AsyncPager[T]:
        """A paginated list; see :meth:`AsyncEndpointsBase._list`."""
        opts = options or _NO_OPTIONS
        mode = pagination or self.pagination
        query = _shrink_limit(encode_query(params, opts.params), mode)
        source = _PageSource[T](self, path, query, opts, page_decoder(cast(Any, item), key))
        return AsyncPager(source, self._spawn, mode)

    # -- one call: retries around attempts ----------------------------------

    def _request(self, url: str, query: Mapping[str, str] | None, opts: CallOptions) -> Request:
        headers = {**self._headers, **opts.headers} if opts.headers else self._headers
        return Request(url, query or None, headers, self.config.api_key)

    async def _send(self, request: Request, opts: CallOptions) -> Response:
        """Send with retries until a 2xx answer, within the call's deadline.

        Raises:
            MassiveError: the typed error of the last attempt.
        """
        if self._closed:
            raise TransportError("the REST client is closed")
        budget = opts.timeout if opts.timeout is not None else self.config.timeouts.total
        deadline = None if budget is None else self._clock() + budget
        attempts = None if opts.retries is None else opts.retries + 1
        state = RetryState(self.config.retry, attempts=attempts, deadline=deadline, draw=self._draw)
        while True:
            if self._limiter is not None:
                # Queueing for the plan's limit is not the call's time: move the deadline.
                waited = await self._limiter.acquire()
                if deadline is not None:
                    deadline = state.deadline = deadline + waited
            outcome = await self._attempt(request, deadline, budget)
            if isinstance(outcome, Response) and 200 <= outcome.status < 300:
                return outcome
            error, status = _failure(outcome)
            delay = state.next_delay(status, self._clock(), error.retry_after)
            if delay is None:
                raise error
            log.debug("= retry %s in %.3f s after %s", request.safe_url, delay, error)
            await self._sleep(delay)

    async def _attempt(
        self, request: Request, deadline: float | None, budget: float | None
    ) -> Response | TransportError:
        """One request, bounded by what is left of the call's deadline.

        Returns:
            The answer, whatever its status, or the transport failure (not raised:
            the caller decides whether to retry).
        """
        if log.isEnabledFor(logging.DEBUG):
            log.debug("> GET %s", request.safe_url)
        remaining = None if deadline is None else max(0.0, deadline - self._clock())
        try:
            async with asyncio.timeout(remaining):
                return await self._transport.send(request)
        except TimeoutError as exc:  # only asyncio.timeout's: the transport maps its own
            timeout = RequestTimeout(f"GET {request.safe_url}: no answer within {budget:g} s")
            timeout.__cause__ = exc
            return timeout
        except TransportError as exc:
            return exc


def _failure(outcome: Response | TransportError) -> tuple[MassiveError, int | None]:
    """The typed error of a failed attempt, and its status (``None``: no answer)."""
    if isinstance(outcome, Response):
        error = error_for_response(outcome.status, outcome.headers, outcome.body, outcome.url)
        return error, outcome.status
    return outcome, None


def _pagination(value: Pagination | bool) -> Pagination:
    # The official client's pagination=True/False (for the whole client) still works.
    if isinstance(value, bool):
        return Pagination.AUTO if value else Pagination.NONE
    return value


def _default_headers(config: RestConfig) -> dict[str, str]:
    return {
        "User-Agent": _USER_AGENT,
        "Accept-Encoding": "gzip" if config.gzip else "identity",
        **config.headers,
    }


def _shrink_limit(query: dict[str, str], mode: Pagination) -> dict[str, str]:
    """Ask for no more rows than ``max_items`` needs, when the call set a larger ``limit``."""
    wanted, limit = mode.limit, query.get("limit")
    if wanted and limit is not None and limit.isdigit() and int(limit) > wanted:
        query["limit"] = str(wanted)
    return query


def _log_answer(response: Response, count: int, request_id: str | None) -> None:
    log.debug(
        "< %d in %.0f ms, %d items, request_id=%s",
        response.status,
        response.elapsed * 1000,
        count,
        request_id,
    )


class _PageSource(Generic[T]):
    """The pages of one list call, as :class:`~massivekit.rest._paginate.PageSource` wants."""

    def __init__(
        self,
        core: AsyncRestCore,
        path: str,
        query: Mapping[str, str],
        opts: CallOptions,
        decoder: Any,
    ) -> None:
        self._core = core
        self._path = path
        self._query = query
        self._opts = opts
        self._decoder = decoder

    async def first(self) -> Response:
        core = self._core
        return await core._send(
            core._request(core.base_url + self._path, self._query, self._opts), self._opts
        )

    async def follow(self, next_url: str) -> Response:
        core = self._core
        request = core._request(rebase(core.base_url, next_url), None, self._opts)
        return await core._send(request, self._opts)

    def peek(self, raw: Response) -> str | None:
        next_url = peek_next_url(raw.body)
        return strip_secrets(next_url) if next_url else None

    def decode(self, raw: Response) -> Page[T]:
        envelope = decode(
            self._decoder, raw.body, status=raw.status, request_id=raw.request_id, url=raw.url
        )
        items: list[T] = envelope.value or []
        next_url = strip_secrets(envelope.next_url) if envelope.next_url else None
        request_id = raw.request_id or envelope.request_id
        if log.isEnabledFor(logging.DEBUG):
            _log_answer(raw, len(items), request_id)
        return Page(items, request_id, next_url, raw.status)
