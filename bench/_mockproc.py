"""The mock Massive server in flood mode, in a child process of its own.

A benchmark of a client must not share its core with the server feeding it:
:class:`FloodServer` starts :class:`~massivekit.mock.server.MockServer` with a
:class:`~massivekit.mock.ws.FloodMode` in a spawned process (pinned to its
own core when the machine has two or more) and stops it on exit::

    with FloodServer(frame_events=10) as url:   # ws://127.0.0.1:PORT/stocks
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from types import TracebackType

KEY = "bench-key"
RENDERED_EVENTS = 200_000
"""Distinct events rendered per flood (then looped): enough to defeat caches."""
START_TIMEOUT = 60.0


def pin(core: int) -> None:
    """Pin this process to ``core`` where the OS allows it and there is more than one."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        os.sched_setaffinity(0, {cores[core % len(cores)]})


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop if uvloop is installed, else asyncio's default one.

    Not ``massivekit._loop.new_event_loop``: that one obeys ``MASSIVEKIT_LOOP``,
    which a comparison sets for the program under test only; the benchmarks'
    own side (mock, load generator, limit loops) stays on uvloop.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dev dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _serve(frame_events: int, core: int, conn: Connection) -> None:
    """Child process: run the flood mock until SIGTERM; send the port first."""
    pin(core)
    # asyncio's own loop: MockServer reads its port from asyncio's Server type.
    # The flood writes 256 KiB chunks, so the loop's speed hardly matters here.
    asyncio.run(_serve_async(frame_events, conn))


async def _serve_async(frame_events: int, conn: Connection) -> None:
    from massivekit.mock.server import MockServer
    from massivekit.mock.ws import FloodMode, WsFaults

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    flood = FloodMode(frame_events=frame_events, frames=max(1, RENDERED_EVENTS // frame_events))
    # Successive benchmark clients reconnect at once: no connection limit.
    faults = WsFaults(max_connections=1_000)
    async with MockServer([KEY], seed=11, flood=flood, ws_faults=faults) as mock:
        conn.send(mock.port)
        await stop.wait()


class FloodServer:
    """A flood-mode mock in a child process; the context value is the stocks URL.

    Args:
        frame_events: events per frame.
        core: the core to pin the child to (the parent should use another).
    """

    def __init__(self, frame_events: int, core: int = 1) -> None:
        self.frame_events = frame_events
        self._core = core
        self._process: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> str:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve, args=(self.frame_events, self._core, child), daemon=True
        )
        process.start()
        self._process = process
        child.close()
        if not parent.poll(START_TIMEOUT):
            self._stop()
            raise RuntimeError("the flood mock did not start")
        port = parent.recv()
        return f"ws://127.0.0.1:{port}/stocks"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        process = self._process
        if process is None:
            return
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
        with contextlib.suppress(ValueError):
            process.close()
        self._process = None
