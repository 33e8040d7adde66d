"""Pagers: the iterators a list call returns, async and sync.

An :class:`AsyncPager` fetches nothing until it is iterated. Then it follows
``next_url`` as its :class:`Pagination` says, **one page ahead**: as soon as
a page arrives, the request for the next one starts, so the network (and the
inflating in a worker thread) overlaps the consumer's work on the current
page. At most one page is in flight and one waits for the consumer: memory
stays bounded whatever the size of the result.

:class:`SyncPager` is the blocking face of the same pager: it drives the
async page iterator on the sync client's loop thread, one page per hop, and
hands out the items of a page in the caller's thread.

The prefetch task is owned by the pager while it runs (cancelled and awaited
when the iteration ends early, through ``aclose()`` / ``close()`` / the
context manager) and by the client behind it (which cancels stragglers on
close).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from dataclasses import replace
from types import TracebackType
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from massivekit.errors import MassiveError
from massivekit.rest._types import Page, Pagination, T

R = TypeVar("R")

_CHUNK: Final = 2048
"""Items handed out between two event-loop checkpoints."""


class PageSource(Protocol[T]):
    """What a pager needs from a client: fetch raw pages, read them, decode them.

    Fetching and decoding are apart so that the next request can leave
    *before* the current page is decoded: decoding a 50,000-row page takes
    tens of milliseconds, as long as the server takes to build the next one.
    """

    async def first(self) -> Any:
        """Fetch the first page's raw answer."""
        ...

    async def follow(self, next_url: str) -> Any:
        """Fetch the raw answer at ``next_url`` (already free of secrets)."""
        ...

    def peek(self, raw: Any) -> str | None:
        """A fast guess at the ``next_url`` of a raw answer (secrets stripped).

        It may be wrong (the decoded page has the truth), but should rarely be.
        """
        ...

    def decode(self, raw: Any) -> Page[T]:
        """The decoded page of a raw answer."""
        ...


class Runner(Protocol):
    """Runs a coroutine to completion on a loop and returns its result (the sync face)."""

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run ``coro`` and block until it is done."""
        ...


Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class AsyncPager(Generic[T]):
    """An async iterator of items; :meth:`pages` iterates whole pages instead.

    Made by a client's list methods; iterate it once (like a generator).

    Args:
        source: fetches and decodes the pages of this list call.
        spawn: starts a task the client owns (the prefetch of the next page).
        pagination: AUTO, NONE or ``Pagination.max_items(n)``.
    """

    def __init__(self, source: PageSource[T], spawn: Spawn, pagination: Pagination) -> None:
        self._source = source
        self._spawn = spawn
        self.pagination = pagination
        self._items: AsyncGenerator[T, None] | None = None

    def with_pagination(self, pagination: Pagination) -> AsyncPager[T]:
        """The same list call under another pagination mode (a new, unstarted pager)."""
        return AsyncPager(self._source, self._spawn, pagination)

    def __aiter__(self) -> AsyncGenerator[T, None]:
        # Hand out the generator itself: ``async for`` then runs at generator speed.
        if self._items is None:
            self._items = self._iter_items()
        return self._items

    async def __anext__(self) -> T:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Stop iterating: cancel the prefetch, release the page in hand."""
        if self._items is not None:
            await self._items.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _iter_items(self) -> AsyncGenerator[T, None]:
        async with contextlib.aclosing(self.pages()) as pages:
            async for page in pages:
                items = page.items
                for start in range(0, len(items), _CHUNK):
                    for item in items[start : start + _CHUNK]:
                        yield item
                    # Yielding an item does not return to the loop: without this
                    # checkpoint the prefetch would not read its answer until the
                    # consumer had finished the whole page.
                    await asyncio.sleep(0)

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        """Iterate pages (items, request id, next_url) rather than items.

        Raises:
            MassiveError: a page failed for good (after the client's retries).
        """
        remaining = self.pagination.limit
        if remaining == 0:
            return
        raw = await self._source.first()
        pending: asyncio.Task[Any] | None = None
        current: str | None = None  # the next_url this page came from
        try:
            while True:
                if remaining is None:
                    # Every page is wanted: send the next request, then decode this page.
                    guess = self._source.peek(raw)
                    pending = await self._prefetch(guess, current)
                    page = self._source.decode(raw)
                    if page.next_url != guess:  # the guess was wrong: follow the truth
                        if pending is not None:
                            await _cancel(pending)
                        pending = await self._prefetch(page.next_url, current)
                else:
                    # Only the page's item count says whether another page is needed.
                    page, remaining = _truncate(self._source.decode(raw), remaining)
                    next_url = page.next_url if remaining > 0 else None
                    pending = await self._prefetch(next_url, current)
                yield page
                if pending is None:
                    return
                current = page.next_url
                raw = await pending
                pending = None
        finally:
            if pending is not None:
                await _cancel(pending)

    async def _prefetch(
        self, next_url: str | None, current: str | None
    ) -> asyncio.Task[Any] | None:
        """Start fetching ``next_url``, unless the mode says stop or the cursor repeats."""
        # A server that answers a page with its own URL again would page forever.
        if not (self.pagination.follow and next_url) or next_url == current:
            return None
        task = self._spawn(self._source.follow(next_url))
        await asyncio.sleep(0)  # one loop turn: the request leaves before we decode
        return task

    async def collect(self) -> list[T]:
        """Every item, in a list."""
        return [item async for item in self]

    async def to_arrow(self) -> Any:
        """Every item as a :class:`pyarrow.Table`, built column by column (needs pyarrow)."""
        from massivekit.rest._frames import to_arrow

        return to_arrow(await self.collect())

    async def to_pandas(self) -> Any:
        """Every item as a :class:`pandas.DataFrame`, built column by column (needs pandas)."""
        from massivekit.rest._frames import to_pandas

        return to_pandas(await self.collect())

    async def to_polars(self) -> Any:
        """Every item as a :class:`polars.DataFrame`, built column by column (needs polars)."""
        from massivekit.rest._frames import to_polars

        return to_polars(await self.collect())


def _truncate(page: Page[T], remaining: int) -> tuple[Page[T], int]:
    if len(page.items) > remaining:
        page = replace(page, items=page.items[:remaining])
    return page, remaining - len(page.items)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, MassiveError):
        await task


class SyncPager(Generic[T]):
    """A blocking iterator of items; :meth:`pages` iterates whole pages instead.

    Args:
        pager: the async pager it drives.
        runner: runs a coroutine on the client's loop thread.
    """

    def __init__(self, pager: AsyncPager[T], runner: Runner) -> None:
        self._pager = pager
        self._runner = runner
        self._items: Generator[T, None, None] | None = None

    @property
    def pagination(self) -> Pagination:
        """The pagination mode of this pager."""
        return self._pager.pagination

    def with_pagination(self, pagination: Pagination) -> SyncPager[T]:
        """The same list call under another pagination mode (a new, unstarted pager)."""
        return SyncPager(self._pager.with_pagination(pagination), self._runner)

    def __iter__(self) -> Generator[T, None, None]:
        if self._items is None:
            self._items = self._iter_items()
        return self._items

    def __next__(self) -> T:
        return next(self.__iter__())

    def close(self) -> None:
        """Stop iterating: cancel the prefetch, release the page in hand."""
        if self._items is not None:
            self._items.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _iter_items(self) -> Generator[T, None, None]:
        with contextlib.closing(self.pages()) as pages:
            for page in pages:
                yield from page.items

    def pages(self) -> Generator[Page[T], None, None]:
        """Iterate pages (items, request id, next_url) rather than items.

        Raises:
            MassiveError: a page failed for good (after the client's retries).
        """
        pages = self._pager.pages()
        try:
            while (page := self._runner.run(_next_page(pages))) is not None:
                yield page
        finally:
            # After the client closed, its loop has already finalized the generator;
            # collected on the loop thread itself, the loop's own finalizer does it.
            with contextlib.suppress(MassiveError, RuntimeError):
                self._runner.run(_aclose(pages))

    def collect(self) -> list[T]:
        """Every item, in a list."""
        return list(self)

    def to_arrow(self) -> Any:
        """Every item as a :class:`pyarrow.Table`, built column by column (needs pyarrow)."""
        from massivekit.rest._frames import to_arrow

        return to_arrow(self.collect())

    def to_pandas(self) -> Any:
        """Every item as a :class:`pandas.DataFrame`, built column by column (needs pandas)."""
        from massivekit.rest._frames import to_pandas

        return to_pandas(self.collect())

    def to_polars(self) -> Any:
        """Every item as a :class:`polars.DataFrame`, built column by column (needs polars)."""
        from massivekit.rest._frames import to_polars

        return to_polars(self.collect())


async def _aclose(pages: AsyncGenerator[Page[T], None]) -> None:
    await pages.aclose()


async def _next_page(pages: AsyncGenerator[Page[T], None]) -> Page[T] | None:
    # A coroutine must not leak StopAsyncIteration into a concurrent.futures.Future.
    try:
        return await pages.__anext__()
    except StopAsyncIteration:
        return None
