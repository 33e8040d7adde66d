"""``massivekit proxy``: run the multiplexing proxy until SIGINT or SIGTERM.

The first line printed is ``listening on http://HOST:PORT``; with ``--unix
PATH``, a line ``listening on unix:PATH`` follows the cluster URLs. On SIGINT or
SIGTERM the proxy drains: it stops accepting, flushes client buffers within
``drain_timeout`` seconds and closes every client with 1001.

Settings come from flags, then the environment, then the TOML file (see
:mod:`massivekit.proxy.config` for every key). The upstream key is best
given in ``MASSIVE_API_KEY``: a key on the command line shows in ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from massivekit.config import Market
from massivekit.errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``proxy`` command to a ``massivekit`` sub-parser set.

    Args:
        sub: what ``ArgumentParser.add_subparsers()`` returned.
    """
    p = sub.add_parser(
        "proxy",
        help="one upstream connection per cluster, many Massive clients",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--host", default=None, help="interface (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 0: any free one)")
    p.add_argument(
        "--unix",
        default=None,
        metavar="PATH",
        help="also listen on this Unix socket, for clients on this host (mode 0660)",
    )
    p.add_argument(
        "--upstream",
        default=None,
        help="upstream base URL, e.g. http://127.0.0.1:9000 (default real Massive)",
    )
    p.add_argument("--upstream-key", default=None, help="upstream key (prefer MASSIVE_API_KEY)")
    p.add_argument(
        "--client-key",
        action="append",
        default=[],
        dest="client_keys",
        help="a proxy key clients authenticate with, every cluster (repeatable)",
    )
    p.add_argument("--admin-token", default=None, help="bearer token of /admin")
    p.add_argument("--config", default=None, help="TOML file (see the README)")
    p.add_argument("--grace", type=float, default=None, help="seconds before upstream unsubscribes")
    p.add_argument(
        "--slow-client",
        choices=["drop_oldest", "disconnect"],
        default=None,
        help="policy for a client that cannot keep up",
    )
    p.add_argument("--buffer-bytes", type=int, default=None, help="send buffer per client")
    p.add_argument(
        "--flush-interval",
        type=float,
        default=None,
        help="least seconds between write rounds (default 0.001)",
    )
    p.add_argument(
        "--flush-duty",
        type=float,
        default=None,
        help="a write round that took T waits this times T before the next (default 0.5)",
    )
    p.add_argument("--test-mode", action="store_true", default=None, help="inject test data")
    p.add_argument("--scenario", default=None, help="the test-mode scenario (default normal)")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "unix": args.unix,
        "upstream": args.upstream,
        "upstream_key": args.upstream_key,
        "client_keys": args.client_keys,
        "admin_token": args.admin_token,
        "grace": args.grace,
        "slow_client": args.slow_client,
        "buffer_bytes": args.buffer_bytes,
        "flush_interval": args.flush_interval,
        "flush_duty": args.flush_duty,
        "test_mode": args.test_mode,
        "scenario": args.scenario,
    }


async def run(args: argparse.Namespace) -> int:
    """Run ``massivekit proxy`` with parsed ``args`` until a signal.

    Returns:
        0 after a clean drain, 2 on a configuration error (a Unix socket path
        that cannot be taken included).
    """
    # Imported here: building the parser must not load aiohttp and the transport.
    from massivekit.proxy.config import load_config
    from massivekit.proxy.inject import TestFeed
    from massivekit.proxy.server import ProxyServer

    try:
        config = load_config(_flags(args), file=args.config)
        TestFeed.check(config.scenario)
    except (ConfigError, ValueError) as exc:
        print(f"massivekit proxy: {exc}", file=sys.stderr)
        return 2
    if config.upstream_key is None and not config.test_mode:
        print("massivekit proxy: no upstream key (MASSIVE_API_KEY)", file=sys.stderr)
        return 2
    if not config.client_keys:
        print(
            "massivekit proxy: no client keys: give --client-key or a config file", file=sys.stderr
        )
        return 2
    proxy = ProxyServer(config)
    stop = _stop_on_signals()
    try:
        try:
            await proxy.start()
        except ConfigError as exc:
            print(f"massivekit proxy: {exc}", file=sys.stderr)
            return 2
        print(f"listening on {proxy.url}", flush=True)
        for market in (Market.STOCKS, Market.OPTIONS):
            print(f"  {market.value}: {proxy.ws_url(market)}", flush=True)
        if proxy.unix_path is not None:
            print(f"listening on unix:{proxy.unix_path}", flush=True)
        await stop.wait()
        await proxy.drain()
    finally:
        _restore_signals()
        await proxy.aclose()
    return 0


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (installed before ``listening`` is printed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _restore_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
