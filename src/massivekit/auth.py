"""API keys and tokens that never leak.

An :class:`ApiKey` shows ``ApiKey('<redacted>')`` wherever it is printed,
and every key ever wrapped in this process is remembered so that
:func:`redact` can scrub it from any text bound for a log, an error message
or a metrics label. :func:`redact_url` removes ``apiKey=`` from URLs (a
``next_url`` carries the key when it travelled as a query parameter), and
:class:`RedactingFilter` applies both to log records.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final

REDACTED: Final = "<redacted>"
MIN_SCRUBBED_LENGTH: Final = 8
"""Shorter secrets are not scrubbed from free text: they would match ordinary
words (Massive keys are 32 characters). Their ``repr`` stays redacted."""

_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_QUERY_SECRET = re.compile(r"(?i)((?:apiKey|api_key|token|access_token)=)[^&#\s\"']+")
_BEARER = re.compile(r"(?i)(Bearer\s+)[^\s\"',]+")


def register_secret(value: str) -> None:
    """Remember ``value`` so :func:`redact` scrubs it from any text from now on."""
    if len(value) >= MIN_SCRUBBED_LENGTH:
        with _known_lock:
            _known_secrets.add(value)


class ApiKey:
    """A secret string: the value is read only through :meth:`reveal`.

    Args:
        value: the key as Massive issued it.

    Raises:
        ValueError: the key is empty.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ValueError("API key is empty")
        self._value = value
        register_secret(value)

    @classmethod
    def coerce(cls, value: str | ApiKey) -> ApiKey:
        """Return ``value`` as an :class:`ApiKey`, wrapping plain strings."""
        return value if isinstance(value, ApiKey) else cls(value)

    def reveal(self) -> str:
        """The key itself, for the wire only: never log what this returns."""
        return self._value

    def __repr__(self) -> str:
        return f"ApiKey({REDACTED!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("ApiKey", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the key to disk or a socket unseen.
        raise TypeError("ApiKey cannot be pickled")


def redact(text: str) -> str:
    """Remove every known secret, ``apiKey=`` query value and Bearer token from ``text``."""
    text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    with _known_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_url(url: str) -> str:
    """``url`` with its ``apiKey``/token query values replaced; safe to log."""
    return redact(url)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from the message and its arguments.

    Install it on a handler (``handler.addFilter(RedactingFilter())``); the
    package's own loggers carry one already (see :func:`get_logger`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        return True


_FILTER: Final = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A logger under ``massivekit`` whose records are always redacted."""
    logger = logging.getLogger(name if name.startswith("massivekit") else f"massivekit.{name}")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
