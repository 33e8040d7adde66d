"""Callbacks per event type or per topic, run off the socket reader.

:class:`CallbackRegistry` maps an event class (``EquityTrade``, or a base
such as ``Aggregate``) or a topic (``"T.AAPL"``, ``"T.*"``) to callbacks.
The stream client runs them in a task of its own that consumes a bounded
buffer like any other consumer, so a slow callback costs drops under the
buffer's overflow policy, never a stalled socket.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from massivekit.auth import get_logger
from massivekit.protocol.topics import is_wildcard, wildcard_of

__all__ = ["Callback", "CallbackRegistry", "Selector"]

_log = get_logger("massivekit.stream.callbacks")

Callback: TypeAlias = Callable[[Any], Awaitable[None] | None]
"""A callable taking one event; it may be a coroutine function."""
Selector: TypeAlias = type | str
"""An event class (subclasses match too) or a topic (``"T.AAPL"``, ``"T.*"``, ``"*"``)."""

ALL = "*"


class CallbackRegistry:
    """Who wants which events."""

    def __init__(self) -> None:
        self._by_type: dict[type, list[Callback]] = {}
        self._by_topic: dict[str, list[Callback]] = {}
        self._resolved: dict[type, tuple[Callback, ...]] = {}
        self.errors = 0
        """Callbacks that raised (each is logged; the stream goes on)."""

    def __bool__(self) -> bool:
        return bool(self._by_type or self._by_topic)

    def __len__(self) -> int:
        return sum(map(len, self._by_type.values())) + sum(map(len, self._by_topic.values()))

    def add(self, selector: Selector, callback: Callback) -> None:
        """Call ``callback`` with every event ``selector`` matches.

        Raises:
            TypeError: ``selector`` is neither a class nor a string.
        """
        self._table(selector).setdefault(selector, []).append(callback)
        self._resolved.clear()

    def remove(self, selector: Selector, callback: Callback) -> bool:
        """Forget one registration; ``False`` if there was none."""
        table = self._table(selector)
        callbacks = table.get(selector, [])
        if callback not in callbacks:
            return False
        callbacks.remove(callback)
        if not callbacks:
            del table[selector]
        self._resolved.clear()
        return True

    def _table(self, selector: Selector) -> dict[Any, list[Callback]]:
        if isinstance(selector, type):
            return self._by_type
        if isinstance(selector, str):
            return self._by_topic
        raise TypeError(f"select events by class or topic string, not {type(selector).__name__}")

    def matching(self, event: Any) -> list[Callback]:
        """The callbacks ``event`` goes to, type matches first."""
        cls = type(event)
        by_type = self._resolved.get(cls)
        if by_type is None:
            by_type = tuple(
                cb for kind, cbs in self._by_type.items() if issubclass(cls, kind) for cb in cbs
            )
            self._resolved[cls] = by_type
        if not self._by_topic:
            return list(by_type)
        found = list(by_type)
        found.extend(self._by_topic.get(ALL, ()))
        topic = getattr(event, "topic", None)
        if isinstance(topic, str):
            found.extend(self._by_topic.get(topic, ()))
            if not is_wildcard(topic):
                found.extend(self._by_topic.get(wildcard_of(topic), ()))
        return found

    async def run(self, batch: Sequence[Any]) -> None:
        """Call every matching callback for each event of ``batch``, in order."""
        for event in batch:
            for callback in self.matching(event):
                await self._call(callback, event)

    async def _call(self, callback: Callback, event: Any) -> None:
        try:
            result = callback(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.errors += 1
            _log.exception("= callback %r failed", callback)
