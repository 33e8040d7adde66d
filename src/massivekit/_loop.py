"""The event loop massivekit's own entry points run on: uvloop when it is installed.

uvloop (the ``fast`` extra: ``pip install massivekit[fast]``) moves the
loop, its transports and their writes into C. For the proxy that is the
difference between keeping up and not: at 100 clients and 500k events/s a
fifth of the proxy's time went to asyncio's Python-level
``transport.write``. Set ``MASSIVEKIT_LOOP=asyncio`` to keep the standard
loop (e.g. to compare, or where uvloop misbehaves).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LOOP_ENV", "new_event_loop", "run"]

LOOP_ENV = "MASSIVEKIT_LOOP"
T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop if uvloop is installed (and not refused by ``MASSIVEKIT_LOOP``)."""
    if os.environ.get(LOOP_ENV, "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
