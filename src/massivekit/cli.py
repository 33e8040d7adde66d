"""The ``massivekit`` command line.

``massivekit mock``  runs the mock Massive server (REST + WebSocket) until
SIGINT/SIGTERM; its first line of output is ``listening on http://HOST:PORT``.

``massivekit demo``  starts the mock in-process and shows a live view of a
stream (last price, change, events/s of the hottest instruments).

``massivekit get ENDPOINT ARGS... [--format table|json|csv|parquet] [--limit N]
[--base-url URL] [-o FILE] [--progress]`` calls any REST list/get method
(``list_trades ticker=AAPL timestamp.gte=2024-01-02``); the key comes from
``MASSIVE_API_KEY`` only, never from the command line.

``massivekit proxy [--host H] [--port P] [--upstream URL] [--config FILE] ...``
runs the multiplexing proxy; its first line is ``listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from massivekit._loop import run as run_loop
from massivekit._version import __version__
from massivekit.config import Market
from massivekit.mock.keys import KeySpec


def _mock_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mock", help="run the mock Massive server (REST + WebSocket)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    p.add_argument("--key", action="append", default=[], help="accepted API key (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="makes market and REST data reproducible")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second per cluster")
    p.add_argument("--frame-events", type=int, default=100, help="most events in one frame")
    faults = p.add_argument_group("failures on demand")
    faults.add_argument("--auth-timeout", type=float, default=10.0, help="seconds to send auth")
    faults.add_argument("--max-connections", type=int, default=1, help="per key and cluster")
    faults.add_argument("--evict", choices=("newest", "oldest"), default="newest")
    faults.add_argument("--slow-consumer-bytes", type=int, default=64 * 1024 * 1024)
    faults.add_argument("--ignore-auth", action="store_true", help="never answer auth")
    faults.add_argument(
        "--key-clusters",
        action="append",
        default=[],
        metavar="KEY=CLUSTER[,CLUSTER]",
        help="a key allowed only these clusters (others answer auth_failed)",
    )
    faults.add_argument(
        "--request-budget", type=int, default=None, help="REST requests per window before 429"
    )
    faults.add_argument("--budget-window", type=float, default=60.0, help="seconds per budget")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of a 429 (s)")
    faults.add_argument("--fail-5xx", type=int, default=0, help="answer the next N REST calls 503")


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the mock plus a live terminal view of a stream")
    p.add_argument("--market", default="stocks", choices=[m.value for m in Market])
    p.add_argument("--rate", type=float, default=20_000.0, help="mock events per second")
    p.add_argument("--top", type=int, default=15, help="instruments shown")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument("--plain", action="store_true", help="print snapshots instead of redrawing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="massivekit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"massivekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _mock_parser(sub)
    _demo_parser(sub)
    from massivekit.rest.cli import add_parser as add_get_parser

    add_get_parser(sub)
    from massivekit.proxy.cli import add_parser as add_proxy_parser

    add_proxy_parser(sub)
    return parser


def _key_specs(args: argparse.Namespace) -> list[KeySpec]:
    restricted: dict[str, frozenset[Market]] = {}
    for item in args.key_clusters:
        key, _, clusters = item.partition("=")
        restricted[key] = frozenset(Market(c) for c in clusters.split(",") if c)
    keys = list(dict.fromkeys([*args.key, *restricted]))
    if not keys:
        raise SystemExit("massivekit mock: give at least one --key")
    return [KeySpec(key=k, clusters=restricted.get(k)) for k in keys]


async def _run_mock(args: argparse.Namespace) -> None:
    from massivekit.mock.rest import RestFaults
    from massivekit.mock.server import MockServer
    from massivekit.mock.ws import WsFaults

    ws_faults = WsFaults(
        auth_timeout=args.auth_timeout,
        max_connections=args.max_connections,
        evict=args.evict,
        slow_consumer_bytes=args.slow_consumer_bytes,
        ignore_auth=args.ignore_auth,
    )
    rest_faults = RestFaults(
        request_budget=args.request_budget,
        budget_window=args.budget_window,
        retry_after=args.retry_after,
    )
    if args.fail_5xx:
        rest_faults.inject_5xx(args.fail_5xx)
    mock = MockServer(
        _key_specs(args),
        host=args.host,
        port=args.port,
        seed=args.seed,
        rate=args.rate,
        frame_events=args.frame_events,
        ws_faults=ws_faults,
        rest_faults=rest_faults,
    )
    async with mock:
        print(f"listening on {mock.url}", flush=True)
        await _wait_for_signal()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``massivekit`` console script."""
    args = build_parser().parse_args(argv)
    runner: Coroutine[Any, Any, object]
    if args.command == "proxy":
        from massivekit.proxy.cli import run as run_proxy

        return run_loop(run_proxy(args))
    if args.command == "get":
        from massivekit.rest.cli import run as run_get

        return run_loop(run_get(args))
    if args.command == "mock":
        runner = _run_mock(args)
    else:
        from massivekit.demo import run_demo

        runner = run_demo(
            market=Market(args.market),
            rate=args.rate,
            top=args.top,
            duration=args.duration,
            plain=args.plain or not sys.stdout.isatty(),
        )
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(runner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
