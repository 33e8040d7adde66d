"""Both ends of a fan-out load: many bare-socket stream clients, and a stamping upstream.

Run by ``bench/proxy_fanout.py``, each end in a process of its own::

    python -m bench._loadgen clients --url ws://127.0.0.1:PORT/stocks --key K \
        --clients 100 --duration 8 [--unix PATH] [--reader c|python] \
        [--drop-url URL | --drop-pid PID]
    python -m bench._loadgen upstream --port 0 --key K --rate 500000
    python -m bench._loadgen drain --clients 1000 [--unix PATH] [--reader c|python]

**clients**:
It connects ``--clients`` clients (a few at a time; over TCP to ``--url``, or
with ``--unix`` over that Unix socket, the request and its Host header
unchanged), each authenticating and subscribing to its share of a realistic
mix (:func:`plan`), warms up, then measures for ``--duration`` seconds, and
finally, if ``--drop-url`` or ``--drop-pid`` is given, cuts the upstream and
times the return of data. Progress goes to stdout as one JSON object per line:
``{"mark": "measure_start"}``, ``{"mark": "measure_end"}``, then ``{"mark":
"result", ...}`` with every figure.

Per socket read a client does the least that still measures: a one-byte
count of ``{`` for the event count, and for one read in :data:`SAMPLE_EVERY`
the first event's ``t`` (Unix ms) against the receive time, for the latency.
Massive timestamps are whole milliseconds, so each latency reads up to 1 ms
high; clocks agree because every process is on this machine.

Two readers do that, the same way (``--reader``): the handshake, auth,
subscription and warm-up always run in Python (:class:`Client`, on uvloop);
with ``c`` (the default) the measurement window and the upstream-drop wait
are read by ``bench/_fastread.c`` instead: every transport pauses its reading
and the C reader epoll-waits over the raw descriptors in a thread, without the
GIL, then Python reads again before closing. Python cost ~5 us per read on top
of the kernel's: at 1,000 clients and 50k upstream events/s the load generator
took 75-93% of its core and its latency figures were mostly its own queueing
(in one short run through the proxy: 80% of the core and p50 26 ms in Python,
40% and 20 ms in C).
The C reader is compiled on first use (``$CC``, else ``cc``) into a cache
under the temporary directory, keyed by the source's hash; without a compiler
the clients read in Python and say so on stderr. ``load_cpu_pct`` is the whole
process's CPU time, the reader's thread included.

**upstream** (:class:`ReplayUpstream`): a Massive-compatible stocks server that
sends ``T``/``Q`` frames of the mock's simulator, rendered once, at a steady
rate, stamping each frame's ``t`` as it goes on the wire. The mock stamps
events when it generates a batch (every 5 ms, thousands at a time), and at
hundreds of thousands of events a second its own queueing dominates (p99 near
90 ms straight from the mock at 500k/s on this machine): with the replay
upstream, the latency measured is the proxy's. SIGUSR1 drops every session
without a close frame, as ``POST /_mock/drop`` does on the mock. It serves TCP
only: picows sets ``TCP_NODELAY`` on every connection, which a Unix socket
refuses.

**drain** (:func:`drain`): the reading side of the raw-limit stage of
``bench/proxy_fanout.py``. It listens (TCP port 0, or ``--unix``), accepts
``--clients`` connections, reads them with the chosen reader until every peer
has closed, and prints the CPU time that took (``{"mark": "drained", ...}``),
so that the kernel's cost of a read is measured in the process that reads.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ctypes
import hashlib
import json
import os
import random
import selectors
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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

    This is the Python reader; the C reader (``bench/_fastread.c``) takes
    over its socket for the measurement window and counts the same way.

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
        self.reads = index  # spreads the sampled reads over time (the C reader goes on from it)
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

    def fileno(self) -> int:
        """The socket's descriptor for the C reader, or -1 once the transport is closing."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return -1
        sock = transport.get_extra_info("socket")
        return -1 if sock is None else int(sock.fileno())

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

        Frames are not parsed, so a header byte equal to ``{`` (0x7b) counts
        too: a 7-bit payload length of 123 (a one-event frame of 123 bytes),
        or a byte of a 16-bit extended length. Measured on the benchmark's
        mix through the proxy (100 clients @ 50k, 1,000 @ 10k, about nine
        events a frame): 0.14% over the events. The C reader counts the
        very same bytes, and a byte count does not depend on where reads
        split the stream, so both readers' figures compare as they are.
        """
        n = data.count(b"{", 0, size)
        stats = self._stats
        self.events += n
        stats.events += n
        stats.reads += 1
        self.reads += 1
        if self.reads % SAMPLE_EVERY == 0 or stats.recovery_after_ms is not None:
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


# --- the C reader ------------------------------------------------------------------------

FASTREAD_SOURCE = Path(__file__).with_name("_fastread.c")
FASTREAD_CFLAGS = ("-O2", "-shared", "-fPIC", "-Wall")
DRAIN_TIMEOUT = 120.0
"""Seconds the drain may wait for its peers to close."""


class _Totals(ctypes.Structure):
    """``fr_totals`` of ``bench/_fastread.c``: what one run added up."""

    _fields_ = [
        (name, ctypes.c_longlong)
        for name in ("events", "reads", "bytes", "closed", "samples", "recovered")
    ]


@dataclass
class FastResult:
    """One run of the C reader.

    Attributes:
        events: the events each descriptor gave in this run.
        reads: each client's read counter after the run (it goes on from the given one).
        samples: latency samples, ms.
        recovered: in recovery mode, each client's receive time (Unix ms) of
            its first stamp at or after the cut, or None.
        closed: descriptors dropped: closed by the peer, broken, or not pollable.
        total_reads: reads that returned data.
        total_bytes: bytes read.
    """

    events: list[int]
    reads: list[int]
    samples: list[float]
    recovered: list[float | None]
    closed: int
    total_reads: int
    total_bytes: int


class FastRead:
    """``bench/_fastread.c``'s ``fr_run``, loaded with ctypes.

    ctypes releases the GIL for the call, so the event loop (idle, its
    transports paused) and the reader's thread do not contend.

    The latency samples land in one array made here, before any window:
    zero-filling :data:`MAX_SAMPLES` doubles (16 MB) takes milliseconds, and
    inside the window it would leave the sockets unread that long.

    Args:
        path: the compiled shared object.
    """

    def __init__(self, path: Path) -> None:
        self._samples = (ctypes.c_double * MAX_SAMPLES)()
        longs = ctypes.POINTER(ctypes.c_longlong)
        doubles = ctypes.POINTER(ctypes.c_double)
        self._run = ctypes.CDLL(str(path), use_errno=True).fr_run
        self._run.argtypes = [
            ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_double, ctypes.c_int,
            ctypes.c_longlong, longs, longs, doubles, ctypes.c_longlong, doubles,
            ctypes.POINTER(_Totals),
        ]  # fmt: skip
        self._run.restype = ctypes.c_int

    def run(
        self,
        fds: Sequence[int],
        seconds: float,
        *,
        sample_every: int = 0,
        reads: Sequence[int] | None = None,
        capacity: int = 0,
        recovery_after_ms: int | None = None,
    ) -> FastResult:
        """Read ``fds`` for ``seconds`` (blocking; call it from a thread).

        Args:
            fds: the descriptors, non-blocking (-1: a client already gone).
            seconds: the window, or in recovery mode the timeout.
            sample_every: one read in this many per client gives a latency
                sample (0: none, e.g. for the drain).
            reads: each client's read counter so far (default 0).
            capacity: at most this many latency samples.
            recovery_after_ms: recovery mode: note each client's first stamp
                at or after this, and end once every client has one.

        Returns:
            What the run read.

        Raises:
            OSError: epoll itself failed.
        """
        n = len(fds)
        events = (ctypes.c_longlong * n)()
        counters = (ctypes.c_longlong * n)(*(reads or [0] * n))
        samples = self._samples
        capacity = min(capacity, MAX_SAMPLES)
        recovered = (ctypes.c_double * n)()
        totals = _Totals()
        after = -1 if recovery_after_ms is None else recovery_after_ms
        rc = self._run(
            (ctypes.c_int * n)(*fds), n, seconds, sample_every, after,
            events, counters, samples, capacity, recovered, ctypes.byref(totals),
        )  # fmt: skip
        if rc != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"the C reader failed: {os.strerror(code)}")
        times: list[float | None] = [None] * n
        if recovery_after_ms is not None:
            times = [t if t >= 0 else None for t in recovered]
        return FastResult(
            events=list(events),
            reads=list(counters),
            samples=samples[: totals.samples],
            recovered=times,
            closed=totals.closed,
            total_reads=totals.reads,
            total_bytes=totals.bytes,
        )


def _cache_dir() -> Path:
    """This user's build cache under the temporary directory (mode 0700, checked)."""
    path = Path(tempfile.gettempdir()) / f"massivekit-bench-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise OSError(f"{path} is not a private directory of this user")
    return path


def build_fastread() -> FastRead | str:
    """The C reader, compiled on first use; or why it cannot be had.

    The shared object is cached outside the source tree (nothing to ignore
    in git), named by a hash of the source, the compiler and the flags, so an
    edit or another ``$CC`` builds afresh. It is compiled under a temporary
    name and renamed into place: processes starting together never load a
    half-written file.

    Returns:
        The loaded reader, or a one-line reason (no compiler, a build error).
    """
    compiler = shlex.split(os.environ.get("CC") or "cc")
    try:
        source = FASTREAD_SOURCE.read_bytes()
        key = hashlib.sha256(
            source + "\0".join([*compiler, *FASTREAD_CFLAGS]).encode()
        ).hexdigest()[:16]
        target = _cache_dir() / f"_fastread-{key}.so"
        if not target.exists():
            partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            command = [*compiler, *FASTREAD_CFLAGS, str(FASTREAD_SOURCE), "-o", str(partial)]
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
            os.replace(partial, target)
        return FastRead(target)
    except subprocess.CalledProcessError as exc:
        return f"{' '.join(compiler)} failed: {(exc.stderr or '').strip()[:300]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no C reader ({exc})"


def choose_reader(kind: str) -> FastRead | None:
    """The C reader when ``kind`` is ``c`` and it builds; else None, said on stderr."""
    if kind != "c":
        return None
    fast = build_fastread()
    if isinstance(fast, str):
        print(f"bench._loadgen: {fast}: reading in Python", file=sys.stderr, flush=True)
        return None
    return fast


class Reader(Protocol):
    """What reads the sockets during the measurement window and the drop."""

    name: str

    async def measure(self, seconds: float) -> None:
        """Read for ``seconds``, adding to the clients and the :class:`Stats`."""

    async def recover(self, after_ms: int) -> dict[int, float]:
        """Each client's receive time (Unix ms) of its first stamp at/after ``after_ms``."""

    def resume(self) -> None:
        """Let the Python clients read again."""


class PythonReader:
    """The clients go on reading in Python (:class:`Client`), as in the warm-up."""

    name = "python"

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    async def measure(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def recover(self, after_ms: int) -> dict[int, float]:
        stats = self._stats
        stats.recovery_after_ms = after_ms
        try:
            async with asyncio.timeout(RECOVERY_TIMEOUT):
                await stats.all_recovered.wait()
        except TimeoutError:
            pass
        return dict(stats.recovered)

    def resume(self) -> None:
        pass


class CReader:
    """The C reader reads the clients' sockets while their transports are paused.

    ``pause_reading()`` makes uvloop stop polling a descriptor, so the C
    reader's own epoll set is its only reader; a BufferedProtocol holds no
    bytes of its own, so nothing read before the pause is left uncounted.

    Args:
        fast: the loaded C reader.
        clients: every client, in index order.
        stats: what the Python clients add to; the C reader's figures go there too.
    """

    name = "c"

    def __init__(self, fast: FastRead, clients: list[Client], stats: Stats) -> None:
        self._fast = fast
        self._clients = clients
        self._stats = stats
        self._fds: list[int] = []
        self._gone = 0

    def _pause(self) -> None:
        if self._fds:
            return
        for client in self._clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.pause_reading()
        self._fds = [client.fileno() for client in self._clients]
        self._gone = self._fds.count(-1)

    async def measure(self, seconds: float) -> None:
        self._pause()
        stats = self._stats
        result = await asyncio.to_thread(
            self._fast.run,
            self._fds,
            seconds,
            sample_every=SAMPLE_EVERY,
            reads=[client.reads for client in self._clients],
            capacity=max(0, MAX_SAMPLES - len(stats.latencies)),
        )
        for client, events, reads in zip(self._clients, result.events, result.reads, strict=True):
            client.events += events
            client.reads = reads
        stats.events += sum(result.events)
        stats.reads += result.total_reads
        stats.latencies.extend(result.samples)
        self._note_closed(result.closed)

    async def recover(self, after_ms: int) -> dict[int, float]:
        self._pause()
        result = await asyncio.to_thread(
            self._fast.run, self._fds, RECOVERY_TIMEOUT, recovery_after_ms=after_ms
        )
        self._note_closed(result.closed)
        return {i: t for i, t in enumerate(result.recovered) if t is not None}

    def _note_closed(self, closed: int) -> None:
        """Say on stderr how many more clients the peer closed (each run counts them all)."""
        if closed > self._gone:
            print(
                f"bench._loadgen: {closed - self._gone} clients closed by the peer",
                file=sys.stderr,
                flush=True,
            )
            self._gone = closed

    def resume(self) -> None:
        for client in self._clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.resume_reading()
        self._fds = []


async def connect(url: str, client: Client, unix: str | None = None) -> float:
    """Connect, authenticate and subscribe one client; return the seconds to auth_success.

    Args:
        url: the stream's URL (its path and Host header, and the TCP address).
        client: the client.
        unix: connect to this Unix socket instead of ``url``'s address.
    """
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
        if unix is None:
            transport, _ = await loop.create_connection(lambda: client, host, port)
        else:
            transport, _ = await loop.create_unix_connection(lambda: client, unix)
        transport.write(request)
        ready = await client.ready
    return ready - start


async def connect_all(url: str, clients: list[Client], unix: str | None = None) -> list[float]:
    """Connect every client, :data:`CONNECT_CONCURRENCY` at a time; their connect times."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(client: Client) -> float:
        async with gate:
            return await connect(url, client, unix)

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
    url: str | None, pid: int | None, reader: Reader, clients: int
) -> dict[str, float | int | None]:
    """Cut the upstream; time the return to clients of data stamped after the cut."""
    start = time.time() * 1000.0
    await drop_upstream(url, pid)
    # The cut is done when drop_upstream returns (the signal: within a ms or so).
    recovered = await reader.recover(int(time.time() * 1000.0) + 2)
    times = sorted(t - start for t in recovered.values())
    return {
        "recovered_clients": len(times),
        "recovery_first_ms": times[0] if times else None,
        "recovery_p50_ms": percentile(times, 0.5),
        "recovery_all_ms": times[-1] if len(times) == clients else None,
    }


async def run(args: argparse.Namespace) -> None:
    """Connect, warm up, measure, drop, report."""
    fast = choose_reader(args.reader)  # built before connecting: no compile in any window
    topics = plan(args.clients, args.seed)
    stats = Stats()
    stats.clients = len(topics)
    clients = [Client(i, args.key, t, stats) for i, t in enumerate(topics)]
    reader: Reader = PythonReader(stats) if fast is None else CReader(fast, clients, stats)
    try:
        connect_times = await connect_all(args.url, clients, args.unix)
        await asyncio.sleep(args.warmup)
        wildcard = [c for c, t in zip(clients, topics, strict=True) if t[0].endswith(".*")]
        base_events, base_wild = stats.events, [c.events for c in wildcard[:2]]
        stats.latencies.clear()
        emit("measure_start")
        started, cpu = time.perf_counter(), time.process_time()
        await reader.measure(args.duration)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu  # every thread's: the C reader's too
        delivered = stats.events - base_events
        upstream = sum(c.events - b for c, b in zip(wildcard[:2], base_wild, strict=True))
        latencies = stats.latencies.copy()
        emit("measure_end")
        dropping = args.drop_url is not None or args.drop_pid is not None
        drop: dict[str, float | int | None] = {}
        if dropping:
            drop = await measure_drop(args.drop_url, args.drop_pid, reader, len(clients))
        reader.resume()
        emit(
            "result",
            reader=reader.name,
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


# --- the raw limit's reader ------------------------------------------------------------


def drain(args: argparse.Namespace) -> None:
    """Accept ``--clients`` connections, read them all until closed, print the CPU it took.

    The CPU time counts from the last accept to the last peer's close, in
    this process only: the kernel's work of reading, which the writer's
    figure leaves out (plus the reader's own: near nothing in C).
    """
    fast = choose_reader(args.reader)  # before the writer may start
    if args.unix is None:
        listener = socket.create_server((args.host, 0), backlog=args.clients)
        address = f"{args.host}:{listener.getsockname()[1]}"
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args.unix)
        listener.listen(args.clients)
        address = args.unix
    conns: list[socket.socket] = []
    try:
        emit("listening", address=address)
        listener.settimeout(DRAIN_TIMEOUT)
        conns = [listener.accept()[0] for _ in range(args.clients)]
        for conn in conns:
            conn.setblocking(False)
        start = os.times()
        if fast is None:
            reads, size = _drain_python(conns)
        else:
            result = fast.run([conn.fileno() for conn in conns], DRAIN_TIMEOUT)
            reads, size = result.total_reads, result.total_bytes
        end = os.times()
    finally:
        for conn in conns:
            conn.close()
        listener.close()
    cpu = (end.user - start.user) + (end.system - start.system)
    reader = "python" if fast is None else "c"
    emit("drained", reader=reader, cpu_s=cpu, reads=reads, bytes=size)


def _drain_python(conns: list[socket.socket]) -> tuple[int, int]:
    """Read every socket until its peer closes; (reads, bytes)."""
    buffer = bytearray(READ_BYTES)
    reads = size = 0
    with selectors.DefaultSelector() as selector:
        for conn in conns:
            selector.register(conn, selectors.EVENT_READ)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    got = ready.recv_into(buffer)
                except BlockingIOError:
                    continue
                except OSError:
                    got = 0
                if not got:
                    selector.unregister(ready)
                    continue
                reads += 1
                size += got
    return reads, size


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
    clients.add_argument("--unix", default=None, help="connect to this Unix socket instead")
    clients.add_argument(
        "--reader", choices=("c", "python"), default="c", help="who reads the measurement"
    )
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
    sink = sub.add_parser("drain", help="read many connections until closed (the raw limit)")
    sink.add_argument("--clients", type=int, required=True)
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--unix", default=None, help="listen on this Unix socket instead")
    sink.add_argument("--reader", choices=("c", "python"), default="c")
    args = parser.parse_args(argv)
    if args.role == "drain":
        drain(args)
        return
    loop = new_loop()
    try:
        loop.run_until_complete(run(args) if args.role == "clients" else serve(args))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
