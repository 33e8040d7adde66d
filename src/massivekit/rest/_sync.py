"""The blocking face: the async core, run on a private event loop thread.

:class:`SyncRestCore` holds an :class:`AsyncRestCore` and a
:class:`LoopThread`; each call submits the core's coroutine to the loop and
blocks until it is done. There is no second implementation of any logic:
retries, deadlines, decoding and paging all run in the async core. A
:class:`SyncPager` drives the async page iterator one page per hop, so the
next page downloads on the loop thread while the caller works on the
current one.

The thread is a daemon (a forgotten client never blocks interpreter exit);
:meth:`SyncRestCore.close` closes the core on its loop, stops the loop and
joins the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from massivekit._loop import new_event_loop
from massivekit.auth import ApiKey
from massivekit.config import RestConfig
from massivekit.errors import TransportError
from massivekit.rest._base import SyncEndpointsBase
from massivekit.rest._core import AsyncRestCore
from massivekit.rest._paginate import SyncPager
from massivekit.rest._ratelimit import Clock, RateLimit, Sleep
from massivekit.rest._types import CallOptions, Pagination, RawResponse, T

R = TypeVar("R")

_JOIN_TIMEOUT: Final = 10.0
_CLOSE_TIMEOUT: Final = 30.0


class LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`close`.

    Args:
        name: the thread's name (shows in debuggers and thread dumps).
    """

    def __init__(self, name: str = "massivekit-rest") -> None:
        self._loop = new_event_loop()  # uvloop with the fast extra
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait(_JOIN_TIMEOUT)
        self._closed = False

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def run(self, coro: Coroutine[Any, Any, R], timeout: float | None = None) -> R:
        """Run ``coro`` on the loop and block until it finishes; its exception propagates.

        Args:
            coro: the coroutine to run.
            timeout: seconds to wait at most (``None``: the coroutine bounds itself).

        Raises:
            TransportError: the loop is closed, or ``timeout`` passed (then the
                coroutine is cancelled).
        """
        if self._closed:
            coro.close()
            raise TransportError("the REST client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a sync client cannot be called from its own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TransportError(f"no result within {timeout:g} s") from exc
        except BaseException:
            future.cancel()  # KeyboardInterrupt in the caller: stop the work on the loop too
            raise

    def close(self) -> None:
        """Stop the loop and join the thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_JOIN_TIMEOUT)


class SyncRestCore(SyncEndpointsBase):
    """The engine behind :class:`massivekit.RestClient`: the async core on a loop thread.

    Takes the same arguments as :class:`~massivekit.rest._core.AsyncRestCore`
    (``sleep`` is still an async callable: it runs on the loop thread).
    """

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
        # Built first: a config error raises before any thread exists.
        self._core = AsyncRestCore(
            api_key,
            base_url=base_url,
            config=config,
            rate_limit=rate_limit,
            pagination=pagination,
            retries=retries,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            base=base,
            sleep=sleep,
            clock=clock,
            env=env,
        )
        self._runner = LoopThread()

    @property
    def config(self) -> RestConfig:
        """The client's configuration."""
        return self._core.config

    @property
    def base_url(self) -> str:
        """The base URL every request goes to."""
        return self._core.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections, stop the loop thread; idempotent."""
        if self._runner.closed:
            return
        with contextlib.suppress(TransportError):
            self._runner.run(self._core.aclose(), timeout=_CLOSE_TIMEOUT)
        self._runner.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._runner.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _get(  # type: ignore[override]
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = "results",
        raw: bool = False,
        options: CallOptions | None = None,
    ) -> T | RawResponse:
        """GET one object, blocking; see :meth:`AsyncEndpointsBase._get`."""
        coro = self._core._get(path, params, result=result, key=key, raw=raw, options=options)
        return self._runner.run(coro)

    def _list(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        item: type[T],
        key: str = "results",
        pagination: Pagination | None = None,
        options: CallOptions | None = None,
    ) -> SyncPager[T]:
        """A paginated list, blocking; see :meth:`AsyncEndpointsBase._list`."""
        pager = self._core._list(
            path, params, item=item, key=key, pagination=pagination, options=options
        )
        return SyncPager(pager, self._runner)
