"""Proxy fan-out: the routing stage alone, then the whole proxy at rising rates.

**Routing stage** (one core, no sockets): massivekit's
:class:`massivekit.proxy.router.Router` (topic index of bound ``list.append``
methods, whole frames forwarded as they came) against a per-client filter
(what the mock's feed and most hubs do: cut the frame once, then test every
event against each client's topics and join the picked slices), on the mock's
stocks frames of 100 events. Printed: upstream events/s one core can route,
deliveries/s and ns per delivery.

**End to end**, three processes, so that no side measures itself:

* the upstream: by default the replay upstream of :mod:`bench._loadgen` (the
  mock's simulated stocks ``T``/``Q`` frames, 100 events each, stamped as they
  go on the wire), or with ``--upstream mock`` the mock itself (``massivekit
  mock --rate R --frame-events 100``, which stamps events when it generates a
  batch, so its own queueing shows in the latency: tens of ms at 500k/s here);
* the proxy: ``massivekit proxy --port 0 --upstream URL --upstream-key K
  --client-key C``, pinned alone to one core;
* the clients: ``python -m bench._loadgen clients``, bare-socket clients on one
  uvloop loop, sharing the other core with the upstream.

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
to the mock at a small scale: a check of the harness only.

Run ``python -m bench.proxy_fanout [--upstream replay|mock] [--duration S]
[--configs 100x50000,1000x50000] [--direct] [--skip-routing] [--skip-e2e]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


# --- the raw limit: what a loopback write costs here -----------------------------------

RAW_CLIENTS = (100, 1_000)
RAW_BYTES = 2_000
"""About what a client gets per write round at the target loads."""
RAW_ROUNDS = 200
TARGET_WRITE_EVERY_MS = 8.0
"""p99 < 10 ms needs each client written at least this often (and routing time besides)."""

_DRAIN = """
import selectors, socket, sys
port, clients, total = (int(a) for a in sys.argv[1:4])
server = socket.create_server(("127.0.0.1", port))
selector = selectors.DefaultSelector()
for _ in range(clients):
    conn, _ = server.accept()
    conn.setblocking(False)
    selector.register(conn, selectors.EVENT_READ)
got = 0
while got < total:
    for key, _ in selector.select():
        try:
            got += len(key.fileobj.recv(1 << 20))
        except BlockingIOError:
            pass
"""


def raw_write_cost(clients: int) -> float:
    """CPU microseconds per loopback write of :data:`RAW_BYTES`, writer on the proxy's core.

    A reader process on the other core drains ``clients`` sockets; this
    process writes to each in turn, :data:`RAW_ROUNDS` times, with a pause
    between rounds as the proxy's writer has. On loopback the writer's
    system call also does the receiving side's TCP work, as the proxy's do.
    """
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    total = clients * RAW_BYTES * RAW_ROUNDS
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    reader = subprocess.Popen([_PY, "-c", _DRAIN, str(port), str(clients), str(total)])
    _pin(reader.pid, OTHER_CORE)
    _pin(os.getpid(), PROXY_CORE)  # restored below: the processes started later inherit it
    socks: list[socket.socket] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not socks:
            try:
                socks.append(socket.create_connection(("127.0.0.1", port)))
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        socks += [socket.create_connection(("127.0.0.1", port)) for _ in range(clients - 1)]
        for sock in socks:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = b"x" * RAW_BYTES
        start = os.times()
        for _ in range(RAW_ROUNDS):
            for sock in socks:
                sock.sendall(payload)
            time.sleep(0.002)
        end = os.times()
        reader.wait(START_TIMEOUT)
    finally:
        for sock in socks:
            sock.close()
        if reader.poll() is None:
            reader.kill()
            reader.wait()
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    cpu = (end.user - start.user) + (end.system - start.system)
    return 1e6 * cpu / (clients * RAW_ROUNDS)


def raw_limit_main() -> None:
    """Print what the writes alone cost at the target fan-outs (the raw limit)."""
    print("\nraw limit: loopback writes from one core (2 KB each, a reader on the other core)")
    for clients in RAW_CLIENTS:
        cost = raw_write_cost(clients)
        share = cost * clients * (1000.0 / TARGET_WRITE_EVERY_MS) / 1e6
        print(
            f"{clients:>7} clients: {cost:.1f} us of CPU per write; writing each every "
            f"{TARGET_WRITE_EVERY_MS:g} ms takes {100 * share:.0f}% of a core before any routing",
            flush=True,
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
) -> dict[str, Any]:
    """Run the clients; sample ``watch``'s CPU (and its latency histogram) over the window."""
    cmd = [
        _PY, "-m", "bench._loadgen", "clients", "--url", ws_url, "--key", key,
        "--clients", str(clients), "--warmup", str(args.warmup),
        "--duration", str(args.duration), *drop,
    ]  # fmt: skip
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


def run_config(clients: int, rate: int, args: argparse.Namespace) -> dict[str, Any]:
    """One (clients, rate) point: upstream, proxy (unless direct), clients."""
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
        with server(proxy_cmd(args.launcher, up_url, args.proxy_args), PROXY_CORE) as (
            proxy,
            proxy_url,
        ):
            ws_proxy = proxy_url.replace("http://", "ws://", 1) + "/stocks"
            metrics = proxy_url + "/metrics"
            row = run_load(ws_proxy, CLIENT_KEY, clients, args, drop, proxy.pid, metrics)
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


def end_to_end(args: argparse.Namespace) -> None:
    """Run every end-to-end configuration and print the table."""
    args.launcher = None if args.direct else proxy_launcher()
    if not args.direct and args.launcher is None:
        print("proxy_fanout: no `massivekit proxy` command yet: clients straight on the mock")
        args.direct, args.upstream = True, "mock"
    configs = _parse_configs(args.configs, DIRECT_CONFIGS if args.direct else CONFIGS)
    via = "straight on the upstream" if args.direct else "through massivekit proxy"
    print(f"\nproxy fan-out end to end, {args.upstream} upstream, clients {via}")
    print(HEADER)
    rows = []
    for clients, rate in configs:
        row = run_config(clients, rate, args)
        rows.append((clients, rate, row))
        print(format_row(clients, rate, row), flush=True)
    if not args.direct:
        print("peer: one T.*/Q.* client straight on the upstream (no proxy)")
        for rate in sorted({rate for _, rate in configs}):
            print(format_row(1, rate, run_peer(rate, args)), flush=True)
        for clients, rate, row in rows:
            if (clients, rate) in TARGETS:
                print(verdict(clients, rate, row))


def main(argv: Sequence[str] | None = None) -> None:
    """The routing stage, then end to end (``make bench`` calls this with no arguments)."""
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_fanout")
    parser.add_argument("--upstream", choices=("replay", "mock"), default="replay")
    parser.add_argument("--configs", default=None, help="e.g. 100x50000,1000x50000")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--direct", action="store_true", help="clients straight on the upstream")
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
        raw_limit_main()
    if not args.skip_e2e:
        end_to_end(args)


if __name__ == "__main__":
    main()
