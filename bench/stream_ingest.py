"""Typed events per second from a stream: massivekit vs the official client vs the limit.

The mock runs in flood mode in a child process on its own core (see
``bench/_mockproc.py``), sending pre-rendered stocks frames of 1, 10 and 100
events as fast as the client reads. Each client, in this process on the other
core, connects, authenticates, subscribes to every stocks event kind and
counts the typed events that reach user code during a fixed window after a
warm-up. Every figure is the best of ``--rounds`` windows (interference from
other processes only ever slows a run); the clients take turns within a round
so that drift hits them alike.

Clients:

* official: ``massive.WebSocketClient`` (typed, as it comes: websockets,
  ``json.loads``, its model classes, its per-frame ``wait_for``), on
  asyncio's own loop as its ``run()`` uses, and again on uvloop;
* massivekit: ``massivekit.StreamClient`` iterated with ``async for batch in
  client``, on each socket adapter (picows, then aiohttp);
* limit: picows' listener decoding each frame with one
  ``msgspec.json.Decoder(list[StocksEvent])`` and nothing else.

Everything but the shipped official client runs on uvloop.

Also: ``ceiling``, picows counting frames without decoding them (what the mock
and the socket can carry: the mock is never what limits a client here), and
the data path without the client (adapter, ``FrameDecoder``, ``Dispatcher``).

Then the WebSocket libraries alone, each with the same ``FrameDecoder`` at
the socket reader: the picows and aiohttp adapters of
:mod:`massivekit.transport`, and websockets (``async for`` over the socket).

Run ``python -m bench.stream_ingest [--rounds N] [--duration S] [--sizes 1,10,100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NamedTuple

import msgspec
import picows

from bench._mockproc import KEY, FloodServer, new_loop, pin
from massivekit.config import Market
from massivekit.models import FrameDecoder, StocksEvent
from massivekit.stream.client import StreamClient, StreamOptions
from massivekit.stream.dispatch import Dispatcher, Overflow
from massivekit.transport.socket import SocketConnector, aiohttp_connector
from massivekit.transport.socket_picows import picows_connector

SIZES = (1, 10, 100)
SUBSCRIBE = ("T.*", "Q.*", "A.*", "AM.*", "LULD.*", "NOI.*")
AUTH = json.dumps({"action": "auth", "params": KEY})
SUB = json.dumps({"action": "subscribe", "params": ",".join(SUBSCRIBE)})
WARMUP_EVENTS = 20_000
RUN_TIMEOUT = 60.0

Client = Callable[[str, "Meter"], Coroutine[Any, Any, None]]


class Rate(NamedTuple):
    """Events per second of wall-clock time, and per second of this process's CPU time."""

    wall: float
    cpu: float


class Meter:
    """Counts events; after a warm-up, measures the rate over a fixed window.

    ``add`` is on every client's hot path: one addition and one comparison.
    The window is closed by a loop timer, not by reading a clock per frame.
    """

    def __init__(self, duration: float, warmup: int = WARMUP_EVENTS) -> None:
        self.events = 0
        self._next = warmup
        self._duration = duration
        self._start_events = 0
        self._t0 = 0.0
        self._cpu0 = 0.0
        self.done: asyncio.Future[Rate] = asyncio.get_running_loop().create_future()

    def add(self, count: int) -> None:
        self.events += count
        if self.events >= self._next:
            self._begin()

    def _begin(self) -> None:
        self._next = math.inf  # type: ignore[assignment]
        self._start_events = self.events
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()
        asyncio.get_running_loop().call_later(self._duration, self._end)

    def _end(self) -> None:
        wall = time.perf_counter() - self._t0
        cpu = time.process_time() - self._cpu0
        events = self.events - self._start_events
        if not self.done.done():
            self.done.set_result(Rate(events / wall, events / cpu))


# -- the clients --------------------------------------------------------------------


async def official(url: str, meter: Meter) -> None:
    """``massive.WebSocketClient``, typed: the processor counts each list of models."""
    from massive import WebSocketClient  # type: ignore[import-untyped]

    host = url.removeprefix("ws://").removesuffix("/stocks")
    client = WebSocketClient(
        api_key=KEY, feed=host, market="stocks", secure=False, subscriptions=list(SUBSCRIBE)
    )

    async def processor(messages: list[Any]) -> None:
        meter.add(len(messages))
        if meter.done.done():
            raise _Done

    try:
        await client.connect(processor)
    except _Done:
        pass
    finally:
        await client.close()


class _Done(Exception):
    """Ends the official client's connect loop from its processor."""


def stream_client(connector: Callable[[], SocketConnector]) -> Client:
    """``massivekit.StreamClient`` on a socket adapter: ``async for batch in client``."""

    async def run(url: str, meter: Meter) -> None:
        options = StreamOptions(connector=connector())
        async with StreamClient(api_key=KEY, url=url, options=options) as client:
            await client.subscribe(*SUBSCRIBE)
            async for batch in client:
                meter.add(len(batch))
                if meter.done.done():
                    break

    return run


async def pipeline(url: str, meter: Meter) -> None:
    """The stream client's data path alone: picows adapter, FrameDecoder, Dispatcher, consumer."""
    decode = FrameDecoder(Market.STOCKS).decode
    dispatcher: Dispatcher[Any] = Dispatcher(maxsize=10_000, overflow=Overflow.DROP_OLDEST)
    consumer = dispatcher.consumer(name="bench")
    publish = dispatcher.publish
    listener = _Listener(lambda data: publish(decode(data)))
    connection = await picows_connector().connect(url, listener, timeout=10)
    try:
        await connection.send(AUTH)
        await connection.send(SUB)
        async for batch in consumer:
            meter.add(len(batch))
            if meter.done.done():
                break
    finally:
        await connection.close()


def adapter(connector: Callable[[], SocketConnector]) -> Client:
    """A transport adapter with FrameDecoder at the socket reader."""

    async def run(url: str, meter: Meter) -> None:
        decode = FrameDecoder(Market.STOCKS).decode
        add = meter.add
        listener = _Listener(lambda data: add(len(decode(data))))
        connection = await connector().connect(url, listener, timeout=10)
        try:
            await connection.send(AUTH)
            await connection.send(SUB)
            await meter.done
        finally:
            await connection.close()

    return run


async def websockets_client(url: str, meter: Meter) -> None:
    """websockets' asyncio client, ``async for`` over the socket, FrameDecoder."""
    from websockets.asyncio.client import connect

    decode = FrameDecoder(Market.STOCKS).decode
    async with connect(url, compression=None, max_size=None) as ws:
        await ws.send(AUTH)
        await ws.send(SUB)
        async for message in ws:
            meter.add(len(decode(message)))
            if meter.done.done():
                break


async def limit(url: str, meter: Meter) -> None:
    """picows' own listener and one msgspec decoder: the cost of the bytes and the types."""
    decode = msgspec.json.Decoder(list[StocksEvent]).decode
    add = meter.add

    class Raw(picows.WSListener):
        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            if frame.msg_type is picows.WSMsgType.TEXT:
                add(len(decode(frame.get_payload_as_bytes())))

    transport, _ = await picows.ws_connect(Raw, url)
    try:
        transport.send(picows.WSMsgType.TEXT, AUTH.encode())
        transport.send(picows.WSMsgType.TEXT, SUB.encode())
        await meter.done
    finally:
        transport.disconnect()
        await transport.wait_disconnected()


async def ceiling(url: str, meter: Meter) -> None:
    """picows counting frames, decoding nothing: what the mock and the socket can carry.

    Counts frames, not events (the report multiplies by the events per frame).
    """
    add = meter.add

    class Count(picows.WSListener):
        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            add(1)

    transport, _ = await picows.ws_connect(Count, url)
    try:
        transport.send(picows.WSMsgType.TEXT, AUTH.encode())
        transport.send(picows.WSMsgType.TEXT, SUB.encode())
        await meter.done
    finally:
        transport.disconnect()
        await transport.wait_disconnected()


class _Listener:
    """A SocketListener that hands every message to one callable."""

    def __init__(self, deliver: Callable[[bytes | str], object]) -> None:
        self._deliver = deliver

    def on_message(self, data: bytes | str, binary: bool) -> None:
        self._deliver(data)

    def on_closed(self, code: int | None, reason: str, error: BaseException | None) -> None:
        pass

    def on_pong(self) -> None:
        pass


# -- running ---------------------------------------------------------------------------


async def measure(client: Client, url: str, duration: float) -> Rate:
    """One window of one client: its events/s."""
    meter = Meter(duration)
    async with asyncio.timeout(RUN_TIMEOUT):
        task = asyncio.create_task(client(url, meter))
        rate = await meter.done
        await task
    return rate


def run_size(
    per_frame: int, clients: dict[str, Client], rounds: int, duration: float
) -> dict[str, Rate]:
    """Best rates of every client at ``per_frame`` events per frame, over ``rounds``."""
    samples: dict[str, list[Rate]] = {name: [] for name in clients}
    with (
        FloodServer(per_frame) as url,
        asyncio.Runner(loop_factory=new_loop) as uv,
        asyncio.Runner() as plain,
    ):
        for _ in range(rounds):
            for name, client in clients.items():
                # The official client as shipped: its run() is asyncio.run, no uvloop.
                runner = plain if name == "official" else uv
                samples[name].append(runner.run(measure(client, url, duration)))
    # Best, not median: on a shared machine interference only ever slows a run.
    return {
        name: Rate(max(r.wall for r in rates), max(r.cpu for r in rates))
        for name, rates in samples.items()
    }


def _k(rate: float) -> str:
    return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.0f} k"


def report(measured: dict[int, dict[str, Rate]], clock: str, *, full: bool = True) -> None:
    """Print the comparison tables, in events per second of ``clock`` (cpu or wall)."""
    results = {
        size: {name: getattr(rate, clock) for name, rate in rates.items()}
        for size, rates in measured.items()
    }
    for size, rates in results.items():
        # It counted frames; and it idles, waiting for the mock: wall clock only.
        rates["ceiling"] = measured[size]["ceiling"].wall * size
    print(
        f"{'ev/frame':>8} {'official':>9} {'(uvloop)':>9} {'massivekit':>11} {'(aiohttp)':>10}"
        f" {'limit':>9} {'vs official':>12} {'of limit':>9}"
    )
    for size, rates in results.items():
        mk, off, lim = rates["StreamClient/picows"], rates["official"], rates["limit"]
        off_uv, alt = rates["official/uvloop"], rates["StreamClient/aiohttp"]
        print(
            f"{size:>8} {_k(off):>9} {_k(off_uv):>9} {_k(mk):>11} {_k(alt):>10} {_k(lim):>9}"
            f" {mk / off:>11.1f}x {mk / lim:>8.0%}"
        )
    if not full:
        return
    print()
    print("where the time goes, on picows (events/s, share of the limit):")
    layers = (
        ("ceiling", "no decode"),
        ("limit", "limit"),
        ("picows", "+FrameDecoder"),
        ("pipeline", "+Dispatcher"),
        ("StreamClient/picows", "StreamClient"),
    )
    print(f"{'ev/frame':>8}" + "".join(f" {label:>15}" for _, label in layers))
    for size, rates in results.items():
        cells = (f"{_k(rates[n])} {rates[n] / rates['limit']:>4.0%}" for n, _ in layers)
        print(f"{size:>8}" + "".join(f" {cell:>15}" for cell in cells))
    print()
    print("socket libraries alone, FrameDecoder at the reader (events/s):")
    names = ("picows", "aiohttp", "websockets")
    print(f"{'ev/frame':>8}" + "".join(f" {n:>11}" for n in names) + "  winner")
    for size, rates in results.items():
        best = max(names, key=lambda n: rates[n])
        print(f"{size:>8}" + "".join(f" {_k(rates[n]):>11}" for n in names) + f"  {best}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.stream_ingest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per window")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args(argv)
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    logging.getLogger("WebSocketClient").setLevel(logging.CRITICAL)
    pin(0)
    clients: dict[str, Client] = {
        "official": official,
        "official/uvloop": official,
        "StreamClient/picows": stream_client(picows_connector),
        "StreamClient/aiohttp": stream_client(aiohttp_connector),
        "limit": limit,
        "ceiling": ceiling,
        "pipeline": pipeline,
        "picows": adapter(picows_connector),
        "aiohttp": adapter(aiohttp_connector),
        "websockets": websockets_client,
    }
    sizes = [int(size) for size in args.sizes.split(",")]
    print(
        "stream_ingest: typed stocks events reaching user code, from the mock in flood mode"
        f" in another process; best of {args.rounds} x {args.duration:g} s; uvloop."
        "\nofficial = massive.WebSocketClient as shipped (asyncio loop), (uvloop) = on uvloop;"
        "\nmassivekit = StreamClient on picows (async for), (aiohttp) = on aiohttp."
    )
    results = {size: run_size(size, clients, args.rounds, args.duration) for size in sizes}
    print(
        "\nevents per second of the client's CPU time (a client under a flood never idles,"
        " so this is its\nspeed on a core of its own, whatever else runs on the machine):"
    )
    report(results, "cpu")
    print("\nthe same, per second of wall-clock time:")
    report(results, "wall", full=False)


if __name__ == "__main__":
    main()
