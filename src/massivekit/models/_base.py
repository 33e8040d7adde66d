"""The base classes of every typed event, and the status event.

Private: import these names from :mod:`massivekit.models.events`.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from msgspec import field


class BaseEvent(
    msgspec.Struct,
    frozen=True,
    gc=False,
    kw_only=True,
    omit_defaults=True,
    tag_field="ev",
):
    """Base of every typed event; concrete classes are tagged with their ``ev`` code."""

    # msgspec passes these options down to subclasses, but type checkers read
    # ``frozen``/``kw_only`` per class (dataclass_transform), so every subclass
    # repeats them.

    ev: ClassVar[str] = ""
    """The event code (``"T"``, ``"XQ"``, ``"status"``...), set from the class's tag."""

    @property
    def instrument(self) -> str | None:
        """The instrument the event is about (``None`` for status events)."""
        return None

    @property
    def topic(self) -> str | None:
        """The subscription topic that delivers this event (``EV.INSTRUMENT``)."""
        instrument = self.instrument
        return None if instrument is None else f"{self.ev}.{instrument}"


class _SymbolEvent(BaseEvent, frozen=True, kw_only=True):
    """An event naming its instrument in ``sym``."""

    symbol: str = field(default="", name="sym")

    @property
    def instrument(self) -> str | None:
        return self.symbol or None


class _TickerEvent(BaseEvent, frozen=True, kw_only=True):
    """An event naming its instrument in ``T`` (stocks LULD and NOI, indices V)."""

    symbol: str = field(default="", name="T")

    @property
    def instrument(self) -> str | None:
        return self.symbol or None


class _PairEvent(BaseEvent, frozen=True, kw_only=True):
    """A forex or crypto event naming its pair in ``pair``."""

    pair: str = field(default="", name="pair")

    @property
    def instrument(self) -> str | None:
        return self.pair or None


# --------------------------------------------------------------------------- status


class StatusEvent(BaseEvent, tag="status", frozen=True, kw_only=True):
    """A connection status (``connected``, ``auth_success``, ``success``, ``error``...).

    Attributes:
        status: the status code (``status``).
        message: the human-readable detail (``message``), e.g. ``subscribed to: T.AAPL``.
    """

    status: str = ""
    message: str = ""
