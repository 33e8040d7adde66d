"""Proxy fan-out: the routing stage alone, then the whole proxy at rising rates.

**Routing stage** (one core, no sockets): massivekit's
:class:`massivekit.proxy.router.Router` (topic index of bound ``list.append``
methods, whole frames forwarded as they came) against a per-client filter
(what the mock's feed and most hubs do: cut the frame once, then test every
event against each client's topics and join the picked slices), on the mock's
stocks frames of 100 events. Printed: upstream events/s one core can route,
deliveries/s and ns per delivery.

**Raw limit** (:func:`raw_write_cost`): what the kernel alone charges for a
client's write round. One process on the proxy's core writes 2 KB to each
of 100 or 1,000 sockets in turn, a reader process on the other core
(``python -m bench._loadgen drain``, the C reader) reads them all, over
loopback TCP and over a Unix socket; each side measures its own CPU. Printed:
the writer's CPU per write, the reader's per read, their sum per client and
round, and what writing every client every 8 ms (the least for a 10 ms p99)
takes: on loopback TCP 11-17 us per client and round at 1,000 clients here
(runs differ), so 1,000 clients need 1.4-2.1 of the machine's 2 cores before
any user-space work; over a Unix socket 3-5.5 us, 0.4-0.7 cores.

**End to end**, three processes, so that no side measures itself:

* the upstream: by default the replay upstream of :mod:`bench._loadgen` (the
  mock's simulated stocks ``T``/``Q`` frames, 100 events each, stamped as they
  go on the wire), or with ``--upstream mock`` the mock itself (``massivekit
  mock --rate R --frame-events 100``, which stamps events when it generates a
  batch, so its own queueing shows in the latency: tens of ms at 500k/s here);
* the proxy: ``massivekit proxy --port 0 --upstream URL --upstream-key K
  --client-key C``, pinned alone to one core;
* the clients: ``python -m bench._loadgen clients``, bare-socket clients on one
  uvloop loop, sharing the other core with the upstream. They connect and
  subscribe in Python; the measurement window and the upstream-drop wait are
  read by a C reader (``bench/_fastread.c``, compiled on first use with
  ``$CC`` or ``cc`` into a cache under the temporary directory), so that the
  load generator is not the limit measured: in Python it took 75-93% of its
  core at 1,000 clients and 50k events/s, and its latency was mostly its own
  queueing. ``--reader python`` keeps the Python reader, to compare; without
  a compiler it is the one used, and the table's title says which read.

``--transport`` (default ``both``): the clients reach the proxy over TCP, or
over a Unix socket (the proxy gets ``--unix PATH``, a fresh path under
/tmp, besides its TCP port), or both, one table each. The upstream side of
the proxy, and the peer below, stay TCP.

Subscription mix (:func:`bench._loadgen.plan`, the same as the routing
stage's): 5% of clients on ``T.*`` or ``Q.*``, the rest on 20-50 of the
mock's 500 most active stocks each (``T.X`` and ``Q.X``). Per configuration:
delivered events/s and how much of what the mix asks for arrived (the
expected fan-out comes from the mock's activity weights, so ~100% is a full
delivery, within a few percent), p50/p99 upstream-to-client latency (event
``t`` against receive time: whole ms, so up to 1 ms high), the proxy's peak
RSS and CPU, the load generator's CPU (at 100% the figures are the load
generator's limit, not the proxy's), client connect time (TCP + upgrade +
auth), and the time from an upstream drop to data stamped after the drop
reaching the first, half and all clients.

The named peer measured in the same run: one wildcard client straight on the
upstream (no proxy), whose latency is the floor the proxy adds to.

Without a proxy command (or with ``--direct``), the clients connect straight
to the upstream at a small scale, over TCP only: a check of the harness.

Run ``python -m bench.proxy_fanout [--upstream replay|mock] [--duration S]
[--configs 100x50000,1000x50000] [--transport tcp|unix|both] [--reader c|python]
[--direct] [--skip-routing] [--skip-e2e]`` (``--skip-routing`` skips the raw
limit too).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

UPSTREAM_KEY = "bench-upstream-key"
CLIENT_KEY = "bench-client-key"
CONFIGS: tuple[tuple[int, int], ...] = (
    (100, 50_000),
    (100, 200_000),
    (100, 500_000),
    (1_000, 10_000),
    (1_000, 50_000),
)
"""(clients, upstream events/s), in order; the issue's targets are 1,000 @ 50k and 100 @ 500k."""
DIRECT_CONFIGS: tuple[tuple[int, int], ...] = ((20, 10_000), (100, 20_000))
TARGETS = {(1_000, 50_000), (100, 500_000)}
TARGET_P99_MS = 10.0
TARGET_RSS_MB = 300.0
START_TIMEOUT = 60.0
RUN_MARGIN = 120.0
"""Seconds a load run may take beyond warm-up and measurement (connects, drop)."""
PROXY_CORE, OTHER_CORE = 1, 0
TRANSPORTS = ("tcp", "unix")
TRANSPORT_NAMES = {"tcp": "TCP", "unix": "Unix socket"}

_PY = sys.executable


# --- routing stage -----------------------------------------------------------------------

ROUTING_CLIENTS = (100, 1_000)
ROUTING_FRAMES = 400
PER_FRAME = 100
ROUNDS = 3
DRAIN_EVERY = 10
"""Frames routed per proxy loop turn (a 128 KiB read holds about ten 100-event frames)."""

Route = Callable[[bytes], object]


def _routing_frames() -> list[bytes]:
    from massivekit.config import Market
    from massivekit.sim.market import MarketSimulator

    simulator = MarketSimulator(Market.STOCKS, seed=11)
    return simulator.frames(PER_FRAME, ROUTING_FRAMES, 1_700_000_000_000)


def _router(sets: list[list[str]], accelerated: bool) -> tuple[Route, Callable[[], int]]:
    from massivekit.proxy._accel import fanout
    from massivekit.proxy.downstream import SendBuffer, SendQueue
    from massivekit.proxy.router import Router

    router = Router(accelerated=accelerated)
    # As in the proxy: each client has a send buffer (the C core's Sink, which
    # the router writes frames into, or the Python SendBuffer, whose append
    # the router calls), and the writer takes each buffer once per loop turn.
    buffers: list[SendQueue] = []
    for i, topics in enumerate(sets):
        if accelerated:
            assert fanout is not None
            sink = fanout.Sink(_nothing)
            router.add_client(i, lambda item, sink=sink: sink.push(*item), sink=sink)
            buffers.append(sink)
        else:
            python = SendBuffer(_nothing)
            router.add_client(i, python.append)
            buffers.append(python)
        router.subscribe(i, topics)

    counts = [0]
    turn = [0]
    route_one = router.route

    def drain() -> None:
        for buffer in buffers:
            if buffer.frames:
                counts[0] += buffer.take()[2]

    def route(frame: bytes) -> None:
        route_one(frame)
        turn[0] += 1
        if turn[0] == DRAIN_EVERY:  # the proxy writes the queues once per loop turn
            turn[0] = 0
            drain()

    def tally() -> int:
        drain()
        events, counts[0] = counts[0], 0
        return events

    return route, tally


def _nothing() -> None:
    pass


def _filtering(sets: list[list[str]]) -> tuple[Route, Callable[[], int]]:
    from massivekit.models.routing import route_frame

    clients = [(frozenset(t), frozenset(x[:-2] for x in t if x.endswith(".*"))) for t in sets]
    counts = [0]

    def route(frame: bytes) -> None:
        events = [(e.ev, f"{e.ev}.{e.instrument}", e.raw) for e in route_frame(frame)]
        for topics, wild in clients:
            picked = [raw for ev, topic, raw in events if ev in wild or topic in topics]
            if picked:
                counts[0] += len(picked)
                _ = b",".join(picked)  # the same output as the Router's (brackets at write)

    def tally() -> int:
        events, counts[0] = counts[0], 0
        return events

    return route, tally


def _measure(route: Route, tally: Callable[[], int], frames: list[bytes]) -> tuple[float, float]:
    best = float("inf")
    deliveries = 0
    for _ in range(ROUNDS):
        tally()
        start = time.perf_counter()
        for frame in frames:
            route(frame)
        best = min(best, time.perf_counter() - start)
        deliveries = tally()
    return len(frames) * PER_FRAME / best, deliveries / best


def routing_main() -> None:
    """Print the routing-stage comparison for 100 and 1,000 clients."""
    from bench._loadgen import plan
    from massivekit.proxy._accel import fanout

    frames = _routing_frames()
    print("proxy fan-out, routing only (one core, 100-event stocks frames, buffers taken per turn)")
    head = ("clients", "router", "upstream ev/s", "deliveries/s", "ns/delivery")
    print(f"{head[0]:>8} {head[1]:<24} {head[2]:>14} {head[3]:>13} {head[4]:>12}")
    builds: list[tuple[str, Callable[[list[list[str]]], tuple[Route, Callable[[], int]]]]] = []
    if fanout is not None:
        builds.append(("massivekit Router, C", lambda sets: _router(sets, True)))
    else:
        print("(the C fan-out core is not built: massivekit Router, C is not measured)")
    builds.append(("massivekit Router, Python", lambda sets: _router(sets, False)))
    builds.append(("per-client filter", _filtering))
    for count in ROUTING_CLIENTS:
        sets = plan(count, seed=count)
        results = {}
        for name, build in builds:
            route, tally = build(sets)
            events, deliveries = _measure(route, tally, frames)
            results[name] = events
            cost = 1e9 / deliveries
            print(f"{count:>8} {name:<24} {events:>14,.0f} {deliveries:>13,.0f} {cost:>12.1f}")
        peer = results["per-client filter"]
        ratios = ", ".join(f"{name} {events / peer:.1f}x" for name, events in results.items())
        print(f"{'':>8} vs the per-client filter: {ratios}", flush=True)


# --- the raw limit: what a loopback write and its read cost here -----------------------

RAW_CLIENTS = (100, 1_000)
RAW_BYTES = 2_000
"""About what a client gets per write round at the target loads."""
RAW_ROUNDS = 200
TARGET_WRITE_EVERY_MS = 8.0
"""p99 < 10 ms needs each client written at least this often (and routing time besides)."""


@dataclass
class RawCost:
    """CPU microseconds of one 2 KB write and of its reading, both sides measured.

    Attributes:
        write_us: the writer's CPU per write (one client, one round).
        read_us: the reader's CPU per read.
        round_us: the reader's CPU per client and round (reads can join writes).
        reader: which reader read (``c`` or ``python``).
    """

    write_us: float
    read_us: float
    round_us: float
    reader: str

    def cores(self, clients: int) -> tuple[float, float]:
        """(the writer's share of its core, writer + reader in cores) at the target pace."""
        per_s = clients * 1000.0 / TARGET_WRITE_EVERY_MS
        return self.write_us * per_s / 1e6, (self.write_us + self.round_us) * per_s / 1e6


def raw_write_cost(clients: int, transport: str, reader: str = "c") -> RawCost:
    """CPU per write of :data:`RAW_BYTES` (writer on the proxy's core) and per read.

    A reader process on the other core (``python -m bench._loadgen drain``:
    the C reader, unless ``reader`` is ``python`` or it cannot be built)
    accepts ``clients`` connections, over loopback TCP or a Unix socket; this
    process writes to each in turn, :data:`RAW_ROUNDS` times, with a pause
    between rounds as the proxy's writer has, then closes them, and the
    reader reports the CPU its reading took. On loopback TCP the writer's
    system call also does much of the receiving side's TCP work, as the
    proxy's do; the reader's figure is the rest.
    """
    import socket

    folder = tempfile.mkdtemp(dir="/tmp") if transport == "unix" else None
    cmd = [_PY, "-m", "bench._loadgen", "drain", "--clients", str(clients), "--reader", reader]
    if folder is not None:
        cmd += ["--unix", os.path.join(folder, "drain.sock")]
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    drain = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _pin(drain.pid, OTHER_CORE)
    _pin(os.getpid(), PROXY_CORE)  # restored below: the processes started later inherit it
    socks: list[socket.socket] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        address = json.loads(_read_line(drain, deadline))["address"]
        for _ in range(clients):
            if folder is None:
                host, _, port = address.rpartition(":")
                sock = socket.create_connection((host, int(port)))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(address)
            socks.append(sock)
        payload = b"x" * RAW_BYTES
        start = os.times()
        for _ in range(RAW_ROUNDS):
            for sock in socks:
                sock.sendall(payload)
            time.sleep(0.002)
        end = os.times()
        for sock in socks:
            sock.close()  # the reader reads to the end, then sees each close
        socks.clear()
        done = json.loads(_read_line(drain, time.monotonic() + START_TIMEOUT))
        drain.wait(START_TIMEOUT)
    finally:
        for sock in socks:
            sock.close()
        _stop(drain)
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    writes = clients * RAW_ROUNDS
    cpu = (end.user - start.user) + (end.system - start.system)
    reads = max(1, done["reads"])
    return RawCost(
        write_us=1e6 * cpu / writes,
        read_us=1e6 * done["cpu_s"] / reads,
        round_us=1e6 * done["cpu_s"] / writes,
        reader=done["reader"],
    )


def raw_limit_main(transports: Sequence[str] = TRANSPORTS, reader: str = "c") -> None:
    """Print what the writes and their reads alone cost at the target fan-outs (the raw limit)."""
    every = f"{TARGET_WRITE_EVERY_MS:g} ms"
    print(
        f"\nraw limit: 2 KB writes from one core to every client in turn ({RAW_ROUNDS} rounds), "
        "one process reading them all on the other core"
    )
    head = ("transport", "clients", "reader", "writer us/write", "reader us/read")
    tail = ("both us/client+round", f"writer's core @{every}", f"both, cores @{every}")
    print(
        f"{head[0]:>11} {head[1]:>7} {head[2]:>6} {head[3]:>15} {head[4]:>14} "
        f"{tail[0]:>20} {tail[1]:>20} {tail[2]:>18}"
    )
    for transport in transports:
        for clients in RAW_CLIENTS:
            cost = raw_write_cost(clients, transport, reader)
            writer, both = cost.cores(clients)
            print(
                f"{TRANSPORT_NAMES[transport]:>11} {clients:>7,} {cost.reader:>6} "
                f"{cost.write_us:>15.1f} {cost.read_us:>14.1f} "
                f"{cost.write_us + cost.round_us:>20.1f} {100 * writer:>19.0f}% {both:>18.2f}",
                flush=True,
            )
    print(
        f"(@{every}: every client written every {every}, the least for a 10 ms p99: clients x "
        f"{1000 / TARGET_WRITE_EVERY_MS:g}/s x the CPU per client and round, before any routing."
        " On loopback TCP the writer's call does much of the reader's TCP work too.)"
    )


# --- processes ---------------------------------------------------------------------------


def _pin(pid: int, core: int) -> None:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        os.sched_setaffinity(pid, {cores[core % len(cores)]})


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    """The next stdout line of ``proc``, waiting until ``deadline`` (monotonic) at most."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no output from {proc.args!r} in time")
            if sel.select(left):
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{proc.args!r} exited ({proc.wait(5)})")
                return line


@contextmanager
def server(cmd: Sequence[str], core: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a server printing ``listening on http://HOST:PORT`` first; stop it on exit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        _pin(proc.pid, core)
        line = _read_line(proc, time.monotonic() + START_TIMEOUT)
        if not line.startswith("listening on "):
            raise RuntimeError(f"unexpected first line from {cmd[:4]}: {line!r}")
        yield proc, line.removeprefix("listening on ").strip()
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS now, peak RSS) of ``pid`` in MB (``/proc/PID/status``)."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def _works(cmd: list[str]) -> bool:
    done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def proxy_launcher() -> list[str] | None:
    """How to start ``massivekit proxy`` here, or None when there is no proxy yet."""
    launcher = [_PY, "-m", "massivekit"]
    return launcher if _works([*launcher, "proxy", "--help"]) else None


def proxy_serves_unix(launcher: list[str]) -> bool:
    """Whether this ``massivekit proxy`` has ``--unix PATH``."""
    done = subprocess.run(
        [*launcher, "proxy", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode == 0 and "--unix" in done.stdout


def _wait_for_socket(path: str, proc: subprocess.Popen[str]) -> None:
    """Wait until ``path`` is a socket (the proxy says TCP first, then binds the Unix one)."""
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited ({proc.returncode}) before unix:{path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the proxy did not listen on unix:{path} in time")
        time.sleep(0.01)


# --- one configuration -------------------------------------------------------------------


def upstream_cmd(kind: str, rate: int, clients: int) -> list[str]:
    """The command line of the upstream."""
    if kind == "mock":
        return [
            _PY, "-m", "massivekit", "mock", "--port", "0", "--key", UPSTREAM_KEY,
            "--rate", str(rate), "--frame-events", "100", "--max-connections", str(clients + 10),
        ]  # fmt: skip
    return [_PY, "-m", "bench._loadgen", "upstream", "--port", "0", "--key", UPSTREAM_KEY,
            "--rate", str(rate)]  # fmt: skip


def proxy_cmd(launcher: list[str], upstream_url: str, extra: Sequence[str] = ()) -> list[str]:
    """The command line of the proxy under test (``extra``: more of its options)."""
    return [
        *launcher, "proxy", "--port", "0", "--upstream", upstream_url,
        "--upstream-key", UPSTREAM_KEY, "--client-key", CLIENT_KEY, *extra,
    ]  # fmt: skip


_BUCKET = re.compile(rb'^massivekit_proxy_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def latency_buckets(metrics_url: str | None) -> dict[float, float]:
    """The proxy's own latency histogram (cumulative counts by upper bound), or {}."""
    if metrics_url is None:
        return {}
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read()
    return {float(le): float(count) for le, count in _BUCKET.findall(text)}


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound (ms) of the bucket holding quantile ``q`` of the rounds in between."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    for bound in bounds:
        if total and after[bound] - before.get(bound, 0.0) >= q * total:
            return bound * 1000.0
    return float("inf")


def run_load(
    ws_url: str,
    key: str,
    clients: int,
    args: argparse.Namespace,
    drop: list[str],
    watch: int,
    metrics_url: str | None = None,
    unix: str | None = None,
) -> dict[str, Any]:
    """Run the clients; sample ``watch``'s CPU (and its latency histogram) over the window.

    ``unix``: the clients connect to this Unix socket (``ws_url`` still names
    the path and the Host header).
    """
    cmd = [
        _PY, "-m", "bench._loadgen", "clients", "--url", ws_url, "--key", key,
        "--clients", str(clients), "--warmup", str(args.warmup),
        "--duration", str(args.duration), "--reader", args.reader, *drop,
    ]  # fmt: skip
    if unix is not None:
        cmd += ["--unix", unix]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        _pin(proc.pid, OTHER_CORE)
        deadline = time.monotonic() + args.warmup + args.duration + RUN_MARGIN
        cpu0 = t0 = cpu1 = t1 = 0.0
        hist0: dict[float, float] = {}
        hist1: dict[float, float] = {}
        while True:
            record = json.loads(_read_line(proc, deadline))
            if record["mark"] == "measure_start":
                cpu0, t0 = cpu_seconds(watch), time.perf_counter()
                hist0 = latency_buckets(metrics_url)
            elif record["mark"] == "measure_end":
                cpu1, t1 = cpu_seconds(watch), time.perf_counter()
                hist1 = latency_buckets(metrics_url)
            elif record["mark"] == "result":
                record["cpu_pct"] = 100 * (cpu1 - cpu0) / (t1 - t0) if t1 > t0 else None
                if hist1:
                    record["proxy_p99_ms"] = bucket_quantile(hist0, hist1, 0.99)
                return dict(record)
    finally:
        _stop(proc)


def run_config(
    clients: int, rate: int, args: argparse.Namespace, transport: str = "tcp"
) -> dict[str, Any]:
    """One (clients, rate) point: upstream, proxy (unless direct), clients.

    With ``transport`` ``unix`` the proxy listens on a Unix socket as well
    (``--unix``, in a fresh directory under /tmp: a socket path must be short)
    and the clients connect there; the proxy's upstream stays TCP.
    """
    if transport == "unix":
        folder = tempfile.mkdtemp(dir="/tmp")
        try:
            return _run_proxied(clients, rate, args, os.path.join(folder, "proxy.sock"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return _run_proxied(clients, rate, args, None)


def _run_proxied(
    clients: int, rate: int, args: argparse.Namespace, unix: str | None
) -> dict[str, Any]:
    with server(upstream_cmd(args.upstream, rate, clients), OTHER_CORE) as (up, up_url):
        ws_upstream = up_url.replace("http://", "ws://", 1) + "/stocks"
        if args.direct:
            row = run_load(ws_upstream, UPSTREAM_KEY, clients, args, [], up.pid)
            row["rss_mb"], row["peak_rss_mb"] = memory_mb(up.pid)
            return row
        if args.upstream == "mock":
            drop = ["--drop-url", f"{up_url}/_mock/drop"]
        else:
            drop = ["--drop-pid", str(up.pid)]
        extra = [*args.proxy_args, *([] if unix is None else ["--unix", unix])]
        with server(proxy_cmd(args.launcher, up_url, extra), PROXY_CORE) as (proxy, proxy_url):
            if unix is not None:
                _wait_for_socket(unix, proxy)
            ws_proxy = proxy_url.replace("http://", "ws://", 1) + "/stocks"
            metrics = proxy_url + "/metrics"
            row = run_load(ws_proxy, CLIENT_KEY, clients, args, drop, proxy.pid, metrics, unix)
            row["rss_mb"], row["peak_rss_mb"] = memory_mb(proxy.pid)
            return row


def run_peer(rate: int, args: argparse.Namespace) -> dict[str, Any]:
    """The peer: one wildcard client straight on the upstream, no proxy."""
    with server(upstream_cmd(args.upstream, rate, 1), OTHER_CORE) as (up, up_url):
        ws_upstream = up_url.replace("http://", "ws://", 1) + "/stocks"
        return run_load(ws_upstream, UPSTREAM_KEY, 1, args, [], up.pid)


# --- report ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


HEADER = (
    f"{'clients':>7} {'upstream':>9} {'seen up':>8} {'delivered':>10} {'of asked':>8} "
    f"{'p50 ms':>7} {'p99 ms':>7} {'in proxy':>8} {'RSS MB':>7} {'CPU %':>6} {'load %':>6} "
    f"{'conn p50/p99 ms':>16} {'drop->data first/half/all ms':>29}"
)


def format_row(clients: int, rate: int, row: dict[str, Any]) -> str:
    """One line of the table."""
    asked = row["upstream_per_s"] * row["expected_fanout"]
    share = f"{100 * row['delivered_per_s'] / asked:.0f}%" if asked else "-"
    cpu = "-" if row.get("cpu_pct") is None else f"{row['cpu_pct']:.0f}"
    drop = "/".join(
        _ms(row.get(k)) for k in ("recovery_first_ms", "recovery_p50_ms", "recovery_all_ms")
    )
    connect = f"{row['connect_p50_ms']:.0f}/{row['connect_p99_ms']:.0f}"
    rss = row.get("peak_rss_mb")
    inside = row.get("proxy_p99_ms")
    inside_text = "-" if inside is None else f"<={inside:g}" if inside < 1e9 else ">1000"
    return (
        f"{clients:>7} {_rate(rate):>9} {_rate(row['upstream_per_s']):>8} "
        f"{_rate(row['delivered_per_s']):>10} {share:>8} {_ms(row['latency_p50_ms']):>7} "
        f"{_ms(row['latency_p99_ms']):>7} {inside_text:>8} {_ms(rss):>7} {cpu:>6} "
        f"{row['load_cpu_pct']:>6.0f} "
        f"{connect:>16} {drop:>29}"
    )


def verdict(clients: int, rate: int, row: dict[str, Any]) -> str:
    """Whether a target configuration met p99 < 10 ms and RSS < 300 MB."""
    p99, rss = row["latency_p99_ms"], row.get("peak_rss_mb") or 0.0
    ok = p99 is not None and p99 < TARGET_P99_MS and rss < TARGET_RSS_MB
    return (
        f"target {clients:,} clients @ {rate // 1000}k/s: p99 {_ms(p99)} ms, "
        f"peak RSS {rss:.0f} MB -> {'met' if ok else 'NOT met'}"
    )


def _parse_configs(text: str | None, default: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    if not text:
        return list(default)
    pairs = (item.split("x") for item in text.split(",") if item)
    return [(int(c), int(r)) for c, r in pairs]


def _transports(args: argparse.Namespace) -> list[str]:
    """The transports asked for that can run here (said when one cannot)."""
    asked = list(TRANSPORTS) if args.transport == "both" else [args.transport]
    if "unix" not in asked:
        return asked
    if args.direct:  # picows (the replay upstream) cannot serve a Unix socket
        print("proxy_fanout: clients straight on the upstream use TCP only")
    elif not proxy_serves_unix(args.launcher):
        print("proxy_fanout: this `massivekit proxy` has no --unix: no Unix-socket table")
    else:
        return asked
    return [t for t in asked if t != "unix"]


def _reader_name(args: argparse.Namespace) -> str:
    """Which reader the clients' measurement will have (built here once, then cached)."""
    if args.reader == "python":
        return "clients read in Python"
    from bench._loadgen import build_fastread

    fast = build_fastread()
    if isinstance(fast, str):
        print(f"proxy_fanout: {fast}: the clients read in Python")
        return "clients read in Python"
    return "clients read in C"


def end_to_end(args: argparse.Namespace) -> None:
    """Run every end-to-end configuration and print a table per transport."""
    args.launcher = None if args.direct else proxy_launcher()
    if not args.direct and args.launcher is None:
        print("proxy_fanout: no `massivekit proxy` command yet: clients straight on the mock")
        args.direct, args.upstream = True, "mock"
    configs = _parse_configs(args.configs, DIRECT_CONFIGS if args.direct else CONFIGS)
    via = "straight on the upstream" if args.direct else "through massivekit proxy"
    reading = _reader_name(args)
    rows = []
    for transport in _transports(args):
        print(
            f"\nproxy fan-out end to end, {args.upstream} upstream, clients {via} "
            f"over {'a ' if transport == 'unix' else ''}{TRANSPORT_NAMES[transport]} ({reading})"
        )
        print(HEADER)
        for clients, rate in configs:
            row = run_config(clients, rate, args, transport)
            rows.append((transport, clients, rate, row))
            print(format_row(clients, rate, row), flush=True)
    if not args.direct:
        print("peer: one T.*/Q.* client straight on the upstream over TCP (no proxy)")
        for rate in sorted({rate for _, rate in configs}):
            print(format_row(1, rate, run_peer(rate, args)), flush=True)
        for transport, clients, rate, row in rows:
            if (clients, rate) in TARGETS:
                print(f"{TRANSPORT_NAMES[transport]}: {verdict(clients, rate, row)}")


def main(argv: Sequence[str] | None = None) -> None:
    """The routing stage, then end to end (``make bench`` calls this with no arguments)."""
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_fanout")
    parser.add_argument("--upstream", choices=("replay", "mock"), default="replay")
    parser.add_argument("--configs", default=None, help="e.g. 100x50000,1000x50000")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--direct", action="store_true", help="clients straight on the upstream")
    parser.add_argument(
        "--transport",
        choices=("tcp", "unix", "both"),
        default="both",
        help="the clients' way to the proxy (both: a table for each)",
    )
    parser.add_argument(
        "--reader",
        choices=("c", "python"),
        default="c",
        help="who reads the clients' sockets in the measurement",
    )
    parser.add_argument(
        "--proxy-args",
        type=str.split,
        default=[],
        help='more proxy options, "--flush-interval 0.002"',
    )
    parser.add_argument("--skip-routing", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    if not args.skip_routing:
        routing_main()
        transports = TRANSPORTS if args.transport == "both" else (args.transport,)
        raw_limit_main(transports, args.reader)
    if not args.skip_e2e:
        end_to_end(args)


if __name__ == "__main__":
    main()
