"""Both ends of a fan-out load: many bare-socket stream clients, and a stamping upstream.

Run by ``bench/proxy_fanout.py``, each end in a process of its own::

    python -m bench._loadgen clients --url ws://127.0.0.1:PORT/stocks --key K \
        --clients 100 --duration 8 [--drop-url URL | --drop-pid PID]
    python -m bench._loadgen upstream --port 0 --key K --rate 500000

**clients**:
It connects ``--clients`` clients (a few at a time), each authenticating and
subscribing to its share of a realistic mix (:func:`plan`), warms up, then
measures for ``--duration`` seconds, and finally, if ``--drop-url`` is given,
cuts the upstream and times the return of data. Progress goes to stdout as one
JSON object per line: ``{"mark": "measure_start"}``, ``{"mark":
"measure_end"}``, then ``{"mark": "result", ...}`` with every figure.

Per socket read a client does the least that still measures (see
:class:`Client`): a one-byte ``count`` (memory speed) for the event count,
and for one read in :data:`SAMPLE_EVERY` the first event's ``t`` (Unix ms)
against the receive time, for the latency. Massive timestamps are whole
milliseconds, so each latency reads up to 1 ms high; clocks agree because
every process is on this machine.

**upstream** (:class:`ReplayUpstream`): a Massive-compatible stocks server that
sends ``T``/``Q`` frames of the mock's simulator, rendered once, at a steady
rate, stamping each frame's ``t`` as it goes on the wire. The mock stamps
events when it generates a batch (every 5 ms, thousands at a time), and at
hundreds of thousands of events a second its own queueing dominates (p99 near
90 ms straight from the mock at 500k/s on this machine): with the replay
upstream, the latency measured is the proxy's. SIGUSR1 drops every session
without a close frame, as ``POST /_mock/drop`` does on the mock.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import aiohttp
import picows
from picows import WSFrame, WSListener, WSMsgType, WSTransport

from bench._mockproc import new_loop

HOT_SYMBOLS = 500
"""Clients pick their symbols among the mock's this many most active stocks."""
WILDCARD_SHARE = 0.05
SYMBOLS_PER_CLIENT = (20, 50)
SAMPLE_EVERY = 8
"""One frame in this many per client gives a latency sample."""
MAX_SAMPLES = 2_000_000
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT = 30.0
RECOVERY_TIMEOUT = 15.0
TRADE_SHARE = 0.38
"""The mock's share of trades among stock tick events (``StocksFeed.trade_ratio``)."""

_T = b',"t":'


def plan(clients: int, seed: int) -> list[list[str]]:
    """Every client's topics: 5% on ``T.*`` or ``Q.*``, the rest 20-50 hot symbols.

    A single client takes ``T.*`` and ``Q.*`` both.

    Args:
        clients: how many clients.
        seed: the mix is the same for the same seed.

    Returns:
        One topic list per client; wildcard clients first, alternating ``T.*``/``Q.*``.
    """
    from massivekit.config import Market
    from massivekit.sim.universe import Universe

    hot = Universe.for_market(Market.STOCKS).symbols[:HOT_SYMBOLS]
    if clients == 1:  # the lone peer client: everything
        return [["T.*", "Q.*"]]
    rng = random.Random(f"loadgen:{seed}")
    wild = max(2, round(clients * WILDCARD_SHARE))
    topics: list[list[str]] = [["T.*"] if i % 2 == 0 else ["Q.*"] for i in range(wild)]
    for _ in range(clients - wild):
        symbols = rng.sample(hot, rng.randint(*SYMBOLS_PER_CLIENT))
        topics.append([f"{ev}.{s}" for s in symbols for ev in ("T", "Q")])
    return topics


def expected_fanout(topics: Sequence[Sequence[str]]) -> float:
    """Deliveries per upstream ``T``/``Q`` event the mix asks for, from the mock's weights."""
    from massivekit.config import Market
    from massivekit.sim.universe import Universe

    weights = {inst.symbol: inst.weight for inst in Universe.for_market(Market.STOCKS)}
    share = {"T": TRADE_SHARE, "Q": 1 - TRADE_SHARE}
    total = 0.0
    for client in topics:
        for topic in client:
            ev, _, symbol = topic.partition(".")
            total += share[ev] * (1.0 if symbol == "*" else weights[symbol])
    return total


class Stats:
    """What every client adds to: counts, latency samples, recovery times."""

    def __init__(self) -> None:
        self.events = 0
        self.reads = 0
        self.statuses = 0
        self.latencies: list[float] = []
        self.recovery_after_ms: int | None = None
        """While set: clients note their first event stamped at or after it."""
        self.recovered: dict[int, float] = {}
        self.all_recovered = asyncio.Event()
        self.clients = 0


class Client(asyncio.BufferedProtocol):
    """One stream client on a bare socket: handshake by hand, then count bytes.

    Once subscribed it does not parse WebSocket frames at all: per socket
    read it counts the events (the JSON objects: a one-byte count over the
    whole read, at memory speed) and, for one read in
    :data:`SAMPLE_EVERY`, takes the first event's ``t`` (the oldest in that
    read) against the receive time. The socket reads into one buffer per
    client, so a read costs no allocation and no copy. A picows client
    parsed every frame and called Python per frame: at 100 clients and 500k
    upstream events/s (half a million frames a second to read) that took
    the load generator's whole core, and the figures were its own limit,
    not the proxy's.
    """

    def __init__(self, index: int, key: str, topics: list[str], stats: Stats) -> None:
        self.index = index
        self._auth = _masked(json.dumps({"action": "auth", "params": key}).encode())
        self._subscribe = _masked(
            json.dumps({"action": "subscribe", "params": ",".join(topics)}).encode()
        )
        self._stats = stats
        self._reads = index  # spreads the sampled reads over time
        self._head = bytearray()  # the handshake and statuses, until streaming
        self._buffer = bytearray(READ_BYTES)
        self._view = memoryview(self._buffer)
        self.events = 0
        self.ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.streaming = False
        self._upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self.streaming:
            self._count(self._buffer, nbytes)
            return
        self._head += self._view[:nbytes]
        if not self._upgraded:
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self._head.startswith(b"HTTP/1.1 101"):
                self._fail(bytes(self._head[:200]))
                return
            self._upgraded = True
            del self._head[: end + 4]
        while not self.streaming:
            frame = _next_frame(self._head)
            if frame is None:
                return
            self._status(frame)
        rest, self._head = bytes(self._head), bytearray()
        if rest:
            self._count(rest, len(rest))

    def _count(self, data: bytes | bytearray, size: int) -> None:
        """Count the events in ``data[:size]``, one read: its JSON objects.

        A one-byte count runs at memory speed; counting ``"ev":`` took 85%
        of the load generator's core at 100 clients and 500k events/s.
        Stocks trades and quotes hold no nested object, so each ``{`` is one
        event. Status events count too, but there are none in the
        measurement window: the acks come before it (during the warm-up)
        and the upstream-drop notices after it.
        """
        n = data.count(b"{", 0, size)
        stats = self._stats
        self.events += n
        stats.events += n
        stats.reads += 1
        self._reads += 1
        if self._reads % SAMPLE_EVERY == 0 or stats.recovery_after_ms is not None:
            self._sample(data, size)

    def _sample(self, payload: bytes | bytearray, size: int) -> None:
        start = payload.find(_T, 0, size)
        if start < 0:
            return
        start += len(_T)
        stamp_bytes = bytes(payload[start : min(start + 13, size)])
        if len(stamp_bytes) < 13 or not stamp_bytes.isdigit():
            return  # cut by the end of the read
        stamp = int(stamp_bytes)
        now = time.time() * 1000.0
        stats = self._stats
        if len(stats.latencies) < MAX_SAMPLES:
            stats.latencies.append(now - stamp)
        after = stats.recovery_after_ms
        if after is not None and stamp >= after and self.index not in stats.recovered:
            stats.recovered[self.index] = now
            if len(stats.recovered) >= stats.clients:
                stats.all_recovered.set()

    def _status(self, payload: bytes) -> None:
        self._stats.statuses += 1
        assert self.transport is not None
        if b'"auth_success"' in payload:
            self.streaming = True
            self.transport.write(self._subscribe)
            if not self.ready.done():
                self.ready.set_result(time.perf_counter())
        elif b'"connected"' in payload:
            self.transport.write(self._auth)
        elif b'"auth_failed"' in payload:
            self._fail(payload)

    def _fail(self, what: bytes) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(what.decode(errors="replace")))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("disconnected before auth_success"))


READ_BYTES = 256 * 1024
"""Each client's read buffer."""


def _masked(payload: bytes) -> bytes:
    """A client's text frame (clients mask what they send, RFC 6455 5.3)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    elif size < 65536:
        header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big")
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    body = (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big") if size else b""
    return header + mask + body


def _next_frame(buffer: bytearray) -> bytes | None:
    """Take one whole unmasked server frame's payload off ``buffer`` (None: not all here)."""
    if len(buffer) < 2:
        return None
    size, at = buffer[1] & 0x7F, 2
    if size == 126:
        if len(buffer) < 4:
            return None
        size, at = int.from_bytes(buffer[2:4], "big"), 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, at = int.from_bytes(buffer[2:10], "big"), 10
    if len(buffer) < at + size:
        return None
    payload = bytes(buffer[at : at + size])
    del buffer[: at + size]
    return payload


async def connect(url: str, client: Client) -> float:
    """Connect, authenticate and subscribe one client; return the seconds to auth_success."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    request = (
        f"GET {parsed.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
    ).encode()
    start = time.perf_counter()
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(CONNECT_TIMEOUT):
        transport, _ = await loop.create_connection(lambda: client, host, port)
        transport.write(request)
        ready = await client.ready
    return ready - start


async def connect_all(url: str, clients: list[Client]) -> list[float]:
    """Connect every client, :data:`CONNECT_CONCURRENCY` at a time; their connect times."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(client: Client) -> float:
        async with gate:
            return await connect(url, client)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(c)) for c in clients]
    return [t.result() for t in tasks]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def emit(mark: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed, for the orchestrator."""
    print(json.dumps({"mark": mark, **fields}), flush=True)


async def drop_upstream(url: str | None, pid: int | None) -> None:
    """Cut the upstream: ``POST`` the mock's drop URL, or SIGUSR1 to the replay upstream."""
    if pid is not None:
        os.kill(pid, signal.SIGUSR1)
        return
    assert url is not None
    async with (
        aiohttp.ClientSession() as session,
        asyncio.timeout(10),
        session.post(url, json={}) as response,
    ):
        response.raise_for_status()


async def measure_drop(
    url: str | None, pid: int | None, stats: Stats
) -> dict[str, float | int | None]:
    """Cut the upstream; time the return to clients of data stamped after the cut."""
    start = time.time() * 1000.0
    await drop_upstream(url, pid)
    # The cut is done when drop_upstream returns (the signal: within a ms or so).
    stats.recovery_after_ms = int(time.time() * 1000.0) + 2
    try:
        async with asyncio.timeout(RECOVERY_TIMEOUT):
            await stats.all_recovered.wait()
    except TimeoutError:
        pass
    times = sorted(t - start for t in stats.recovered.values())
    return {
        "recovered_clients": len(times),
        "recovery_first_ms": times[0] if times else None,
        "recovery_p50_ms": percentile(times, 0.5),
        "recovery_all_ms": times[-1] if len(times) == stats.clients else None,
    }


async def run(args: argparse.Namespace) -> None:
    """Connect, warm up, measure, drop, report."""
    topics = plan(args.clients, args.seed)
    stats = Stats()
    stats.clients = len(topics)
    clients = [Client(i, args.key, t, stats) for i, t in enumerate(topics)]
    try:
        connect_times = await connect_all(args.url, clients)
        await asyncio.sleep(args.warmup)
        wildcard = [c for c, t in zip(clients, topics, strict=True) if t[0].endswith(".*")]
        base_events, base_wild = stats.events, [c.events for c in wildcard[:2]]
        stats.latencies.clear()
        emit("measure_start")
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(args.duration)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        delivered = stats.events - base_events
        upstream = sum(c.events - b for c, b in zip(wildcard[:2], base_wild, strict=True))
        latencies = stats.latencies.copy()
        emit("measure_end")
        dropping = args.drop_url is not None or args.drop_pid is not None
        drop = await measure_drop(args.drop_url, args.drop_pid, stats) if dropping else {}
        emit(
            "result",
            clients=len(clients),
            connect_p50_ms=1000 * (percentile(connect_times, 0.5) or 0),
            connect_p99_ms=1000 * (percentile(connect_times, 0.99) or 0),
            connect_max_ms=1000 * max(connect_times),
            delivered_per_s=delivered / elapsed,
            load_cpu_pct=100 * cpu / elapsed,
            upstream_per_s=upstream / elapsed,
            expected_fanout=expected_fanout(topics),
            latency_p50_ms=percentile(latencies, 0.5),
            latency_p99_ms=percentile(latencies, 0.99),
            latency_max_ms=max(latencies, default=None),
            samples=len(latencies),
            **drop,
        )
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.close()


# --- the replay upstream ---------------------------------------------------------------

_PLACEHOLDER_MS = 1_111_111_111_111  # 13 digits, like every stamp until 2286
_PLACEHOLDER = b'"t":%d' % _PLACEHOLDER_MS
RENDERED_EVENTS = 200_000
"""Distinct events rendered once and then replayed in a loop."""
TICK = 0.001


def _status(status: str, message: str) -> bytes:
    return _compact([{"ev": "status", "status": status, "message": message}])


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def render_frames(seed: int, per_frame: int) -> list[bytes]:
    """``T``/``Q`` frames of the mock's stocks simulator, ``t`` left as a placeholder."""
    from massivekit.config import Market
    from massivekit.sim.market import MarketSimulator

    sim = MarketSimulator(Market.STOCKS, seed)
    batch = sim.batch(RENDERED_EVENTS, _PLACEHOLDER_MS)
    data = [
        d for topic, d in zip(batch.topics, batch.data, strict=True) if topic[:2] in ("T.", "Q.")
    ]
    return [
        b"[" + b",".join(data[i : i + per_frame]) + b"]" for i in range(0, len(data), per_frame)
    ]


class UpstreamSession(WSListener):
    """One downstream of the replay upstream: handshake, then every frame."""

    def __init__(self, upstream: ReplayUpstream) -> None:
        super().__init__()
        self._upstream = upstream
        self.transport: WSTransport | None = None
        self.paused = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.send(WSMsgType.TEXT, _status("connected", "Connected Successfully"))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        try:
            message = json.loads(frame.get_payload_as_bytes())
            action, params = message["action"], str(message.get("params", ""))
        except (ValueError, KeyError, TypeError):
            return
        if action == "auth" and params == self._upstream.key:
            transport.send(WSMsgType.TEXT, _status("auth_success", "authenticated"))
            self._upstream.sessions.add(self)
        elif action == "auth":
            transport.send(WSMsgType.TEXT, _status("auth_failed", "authentication failed"))
            transport.disconnect()
        elif action in ("subscribe", "unsubscribe"):
            verb = "subscribed to" if action == "subscribe" else "unsubscribed to"
            acks = [
                {"ev": "status", "status": "success", "message": f"{verb}: {topic}"}
                for topic in params.split(",")
                if topic
            ]
            transport.send(WSMsgType.TEXT, _compact(acks))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._upstream.sessions.discard(self)


class ReplayUpstream:
    """Sends every authenticated session the rendered frames at ``rate`` events/s.

    It sends everything whatever the subscriptions: the benchmark's mix holds
    ``T.*`` and ``Q.*``, so the proxy's upstream set covers every frame anyway.
    A session whose socket buffer is full skips frames (counted), as a real
    feed cannot wait for one reader.
    """

    def __init__(self, key: str, rate: float, frames: list[bytes], per_frame: int) -> None:
        self.key = key
        self.sessions: set[UpstreamSession] = set()
        self.skipped = 0
        self._rate = rate / per_frame  # frames per second
        self._frames = frames
        self._next = 0

    async def pump(self) -> None:
        """Send what is due every millisecond, stamped at that moment, until cancelled."""
        carry = 0.0
        last = time.perf_counter()
        frames, count = self._frames, len(self._frames)
        while True:
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            carry = min(carry + self._rate * (now - last), self._rate * 0.05)
            last = now
            due = int(carry)
            if due <= 0 or not self.sessions:
                continue
            carry -= due
            stamp = b'"t":%d' % int(time.time() * 1000.0)
            sessions = list(self.sessions)
            for _ in range(due):
                frame = frames[self._next].replace(_PLACEHOLDER, stamp)
                self._next = (self._next + 1) % count
                for session in sessions:
                    if session.paused or session.transport is None:
                        self.skipped += 1
                    else:
                        session.transport.send(WSMsgType.TEXT, frame)

    def drop(self) -> None:
        """Cut every session without a close frame."""
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.underlying_transport.abort()


async def serve(args: argparse.Namespace) -> None:
    """Run the replay upstream until SIGTERM/SIGINT; print ``listening on`` first."""
    upstream = ReplayUpstream(
        args.key, args.rate, render_frames(args.seed, args.frame_events), args.frame_events
    )
    server = await picows.ws_create_server(
        lambda request: UpstreamSession(upstream), args.host, args.port
    )
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, upstream.drop)
    print(f"listening on http://{args.host}:{port}", flush=True)
    async with server, asyncio.TaskGroup() as group:
        pump = group.create_task(upstream.pump())
        await stop.wait()
        pump.cancel()
    if upstream.skipped:  # the reader fell behind: its figures are not the proxy's alone
        print(f"replay upstream: {upstream.skipped} frames skipped", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run one end of the load on uvloop."""
    parser = argparse.ArgumentParser(prog="python -m bench._loadgen")
    sub = parser.add_subparsers(dest="role", required=True)
    clients = sub.add_parser("clients", help="many stream clients")
    clients.add_argument("--url", required=True, help="ws://HOST:PORT/stocks")
    clients.add_argument("--key", required=True)
    clients.add_argument("--clients", type=int, default=100)
    clients.add_argument("--seed", type=int, default=0)
    clients.add_argument("--warmup", type=float, default=2.0)
    clients.add_argument("--duration", type=float, default=8.0)
    drop = clients.add_mutually_exclusive_group()
    drop.add_argument("--drop-url", default=None, help="POST here to cut the upstream")
    drop.add_argument("--drop-pid", type=int, default=None, help="SIGUSR1 this upstream")
    upstream = sub.add_parser("upstream", help="a stamping Massive-compatible stocks server")
    upstream.add_argument("--host", default="127.0.0.1")
    upstream.add_argument("--port", type=int, default=0)
    upstream.add_argument("--key", required=True)
    upstream.add_argument("--rate", type=float, required=True, help="events per second")
    upstream.add_argument("--frame-events", type=int, default=100)
    upstream.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    loop = new_loop()
    try:
        loop.run_until_complete(run(args) if args.role == "clients" else serve(args))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
