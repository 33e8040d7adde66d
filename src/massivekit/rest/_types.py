"""Small value objects shared by every layer of the REST client.

:class:`RawResponse` is what ``raw=True`` returns, :class:`CallOptions` the
per-call escape hatches, :class:`Pagination` the paging mode and
:class:`Page` one page of a list call. None of them does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from massivekit.auth import redact_url
from massivekit.errors import DeserializeError

T = TypeVar("T")

QueryValue = str | int | float | bool


class RawResponse(msgspec.Struct, frozen=True):
    """An undecoded response, returned by any endpoint method called with ``raw=True``.

    Attributes:
        status: the HTTP status.
        headers: the response headers (case-insensitive lookups).
        body: the body, decompressed, as bytes.
        url: the request URL with any key redacted.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def __repr__(self) -> str:
        # The body may be megabytes, and may echo a key (a next_url with apiKey=):
        # a repr shows its size only.
        return (
            f"RawResponse(status={self.status}, url={redact_url(self.url)!r}, "
            f"body=<{len(self.body)} bytes>)"
        )

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            DeserializeError: the body is not JSON.
        """
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError as exc:
            raise DeserializeError(
                f"response body is not JSON: {exc}", status=self.status, body=self.body
            ) from exc


class CallOptions(msgspec.Struct, frozen=True):
    """Per-call escape hatches; every field left ``None`` keeps the client's setting.

    Attributes:
        timeout: total seconds for this call, retries and backoff waits included
            (for a list, per page); waits for the client-side rate limiter are not
            counted. ``None`` keeps ``config.timeouts.total``.
        params: extra query parameters, sent as given (they win over the method's).
        headers: extra request headers (e.g. Launchpad edge headers).
        retries: retries after the first attempt for this call (``0``: no retry),
            overriding ``RetryPolicy.attempts``.
    """

    timeout: float | None = None
    params: Mapping[str, QueryValue] | None = None
    headers: Mapping[str, str] | None = None
    retries: int | None = None


@dataclass(frozen=True, slots=True)
class Pagination:
    """How a list call follows ``next_url``.

    Use :attr:`AUTO` (every page, the default), :attr:`NONE` (the first page
    only) or :meth:`max_items` (stop after ``n`` items, fetching no more pages
    than needed).
    """

    follow: bool = True
    limit: int | None = None

    AUTO: ClassVar[Pagination]
    NONE: ClassVar[Pagination]

    @classmethod
    def max_items(cls, n: int) -> Pagination:
        """Follow pages until ``n`` items have been yielded.

        Raises:
            ValueError: ``n`` is negative.
        """
        if n < 0:
            raise ValueError("max_items needs n >= 0")
        return cls(follow=True, limit=n)


Pagination.AUTO = Pagination()
Pagination.NONE = Pagination(follow=False)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list call.

    Attributes:
        items: the decoded items of this page.
        request_id: Massive's request id for the page, if it sent one.
        next_url: the next page's URL with any key redacted, or ``None`` on the last page.
        status: the HTTP status of the page.
    """

    items: list[T]
    request_id: str | None
    next_url: str | None
    status: int = 200
