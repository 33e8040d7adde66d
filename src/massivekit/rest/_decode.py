"""Bodies to values, and error answers to typed errors: pure functions, no I/O.

A Massive answer is an envelope, ``{"status", "request_id", "results",
"next_url", ...}``. For each (item type, result key) one msgspec decoder is
built once, for an envelope Struct holding just what we read, so the whole
body decodes in one C pass straight into the user's Structs (unknown fields
ignored, absent ones ``None``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

import msgspec

from massivekit.errors import ApiError, DeserializeError, error_for_status
from massivekit.rest._retry import parse_retry_after

_CACHE_SIZE: Final = 1024
_PAUSE_GC_BYTES: Final = 64 * 1024


class ErrorBody(msgspec.Struct):
    """What an error answer may say: ``error`` or ``message``, and ``request_id``."""

    request_id: str | None = None
    error: str | None = None
    message: str | None = None
    status: str | None = None


_error_decoder: Final = msgspec.json.Decoder(ErrorBody)


_NEXT_URL_KEY: Final = b'"next_url"'
_str_decoder: Final = msgspec.json.Decoder(str)


def peek_next_url(body: bytes) -> str | None:
    """A fast guess at the top-level ``next_url`` of a page, without decoding its items.

    A JSON string cannot hold an unescaped quote, so ``"next_url"`` followed by
    a colon is a key wherever it occurs; the last one is the envelope's in
    every Massive answer (it follows ``results``). Only a nested object with a
    ``next_url`` key after the envelope's could fool this, which is why the
    pager checks the guess against the full decode and corrects it.

    Returns:
        The URL, or ``None`` when the body has no ``next_url`` string.
    """
    at = body.rfind(_NEXT_URL_KEY)
    if at < 0:
        return None
    start = at + len(_NEXT_URL_KEY)
    while start < len(body) and body[start] in b" \t\r\n:":
        start += 1
    end = body.find(b'"', start + 1)
    if end < 0 or body[start : start + 1] != b'"':
        return None
    try:
        return _str_decoder.decode(body[start : end + 1])
    except msgspec.MsgspecError:
        return None  # an escaped quote, or worse: the full decode will tell


@contextlib.contextmanager
def gc_paused(size: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while a big body decodes.

    Decoding a 50,000-row page allocates some 100,000 containers; each 700
    allocations would start a collection that walks the young objects, and
    often an older generation too, tripling the decode time. Nothing a decode
    builds can form a reference cycle, so pausing loses nothing; the pause is
    as long as the decode (tens of milliseconds) and the collector's state is
    restored after it.
    """
    if size < _PAUSE_GC_BYTES or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@lru_cache(maxsize=_CACHE_SIZE)
def page_decoder(item: Any, key: str) -> msgspec.json.Decoder[Any]:
    """A decoder of a list page whose items, under ``key``, are ``item``.

    The decoded envelope has ``value`` (the list under ``key``, or ``None``),
    ``next_url`` and ``request_id``.
    """
    envelope = msgspec.defstruct(
        "Page",
        [
            ("value", list[item] | None, None),
            ("next_url", str | None, None),
            ("request_id", str | None, None),
        ],
        rename={"value": key},  # any key, even one that is no identifier
    )
    return msgspec.json.Decoder(envelope)


@lru_cache(maxsize=_CACHE_SIZE)
def value_decoder(result: Any, key: str | None) -> msgspec.json.Decoder[Any]:
    """A decoder of a single answer: ``result`` under ``key`` (as ``value``), or the whole body.

    With a ``key``, the decoded envelope has ``value`` (``None`` when the key is
    absent) and ``request_id``; with ``key=None`` the body decodes to ``result``.
    """
    if key is None:
        return msgspec.json.Decoder(result)
    envelope = msgspec.defstruct(
        "Envelope",
        [("value", result | None, None), ("request_id", str | None, None)],
        rename={"value": key},
    )
    return msgspec.json.Decoder(envelope)


def decode(
    decoder: msgspec.json.Decoder[Any],
    body: bytes,
    *,
    status: int,
    request_id: str | None,
    url: str,
) -> Any:
    """Decode ``body``, mapping every msgspec failure to :class:`DeserializeError`.

    Raises:
        DeserializeError: the body is not JSON, or does not fit the model.
    """
    try:
        with gc_paused(len(body)):
            return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = f"GET {url}: the answer does not fit its model: {exc}"
        raise DeserializeError(message, status=status, request_id=request_id, body=body) from exc
    except msgspec.DecodeError as exc:
        message = f"GET {url}: the answer is not valid JSON: {exc}"
        raise DeserializeError(message, status=status, request_id=request_id, body=body) from exc


def error_for_response(status: int, headers: Mapping[str, str], body: bytes, url: str) -> ApiError:
    """The typed error for a non-2xx answer, with status, request id, retry-after and preview.

    The request id comes from ``X-Request-Id`` or, failing that, the body's
    ``request_id``; the message from the body's ``error`` or ``message``.
    """
    info = _error_info(body)
    request_id = headers.get("X-Request-Id") or info.request_id
    detail = info.error or info.message or info.status or f"HTTP {status}"
    cls = error_for_status(status)
    retry_after = parse_retry_after(headers.get("Retry-After")) if status == 429 else None
    return cls(
        f"GET {url}: {detail}",
        status=status,
        request_id=request_id,
        retry_after=retry_after,
        body=body,
    )


def _error_info(body: bytes) -> ErrorBody:
    try:
        info = _error_decoder.decode(body)
    except msgspec.MsgspecError:
        return ErrorBody()  # not JSON (a proxy's HTML page): the preview shows it
    return info
