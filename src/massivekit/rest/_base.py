"""The two bases the generated endpoint mixins build on.

A generated method only fills the path and the wire parameters, then calls
``self._get`` (one object) or ``self._list`` (a paginated list). The core
clients implement both; the sync face runs the same async core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, overload

from massivekit.rest._paginate import AsyncPager, SyncPager
from massivekit.rest._types import CallOptions, Page, Pagination, RawResponse, T

__all__ = [
    "AsyncEndpointsBase",
    "AsyncPager",
    "CallOptions",
    "Page",
    "Pagination",
    "RawResponse",
    "SyncEndpointsBase",
    "SyncPager",
    "T",
]


class AsyncEndpointsBase:
    """What the generated async mixin calls; implemented by the async core client."""

    @overload
    async def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = ...,
        raw: Literal[False] = ...,
        options: CallOptions | None = ...,
    ) -> T: ...
    @overload
    async def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = ...,
        raw: Literal[True],
        options: CallOptions | None = ...,
    ) -> RawResponse: ...
    @overload
    async def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = ...,
        raw: bool,
        options: CallOptions | None = ...,
    ) -> T | RawResponse: ...
    async def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = "results",
        raw: bool = False,
        options: CallOptions | None = None,
    ) -> T | RawResponse:
        """GET one object.

        Args:
            path: the URL path, path parameters already quoted.
            params: wire-named query parameters; ``None`` values are dropped,
                lists joined by ``,``, bools ``true``/``false``, dates ISO.
            result: the type the value under ``key`` decodes to.
            key: the top-level body field holding the value; ``None`` for the whole body.
            raw: return the undecoded :class:`RawResponse` instead.
            options: per-call timeout, extra params/headers, retries.

        Returns:
            The decoded value (``None`` when the body has no ``key``), or the
            raw response when ``raw`` is true.

        Raises:
            MassiveError: any failure, typed (see :mod:`massivekit.errors`).
        """
        raise NotImplementedError

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
        """A paginated list: an async iterator of ``item`` (``.pages()`` for pages).

        Args:
            path: the URL path, path parameters already quoted.
            params: wire-named query parameters, as for :meth:`_get`.
            item: the type each element under ``key`` decodes to.
            key: the top-level body field holding the list.
            pagination: AUTO (default), NONE, or ``Pagination.max_items(n)``.
            options: per-call timeout (per page), extra params/headers, retries.

        Returns:
            A lazy pager; nothing is fetched until it is iterated.
        """
        raise NotImplementedError


class SyncEndpointsBase:
    """What the generated sync mixin calls; implemented by the sync core client."""

    @overload
    def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = ...,
        raw: Literal[False] = ...,
        options: CallOptions | None = ...,
    ) -> T: ...
    @overload
    def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = ...,
        raw: Literal[True],
        options: CallOptions | None = ...,
    ) -> RawResponse: ...
    @overload
    def _get(
        self,
        path: str,
        params: Mapping[str, object] | None,
        *,
        result: type[T],
        key: str | None = ...,
        raw: bool,
        options: CallOptions | None = ...,
    ) -> T | RawResponse: ...
    def _get(
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
        raise NotImplementedError

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
        raise NotImplementedError
