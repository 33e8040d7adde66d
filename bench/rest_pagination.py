"""``list_trades`` over 500,000 trades: massivekit (async and sync) vs the official client.

The mock runs as a separate process (``massivekit mock --port 0 --key K
--seed 1``; its first line says where it listens), pinned to one core while
this process keeps the others, as on the machines of PERFORMANCE.md. Each
round pages through the same 500,000 AAPL trades (10 pages of 50,000) with:

* official: ``massive.RESTClient(api_key, base=url).list_trades`` (urllib3,
  ``json.loads``, a model object per trade);
* massivekit async: ``AsyncRestClient.list_trades`` under uvloop, ``async for``;
* massivekit sync: ``RestClient.list_trades``, ``for``;

once with gzip (the official client always asks for it; so does ours by
default) and once plain (``Accept-Encoding: identity`` for both). Clients
alternate within each round so that machine noise hits them alike; the
figure is the median of the rounds, in items per second, and the ratio is
against the official client measured in the same run.

Two sources, each measured the same way:

* **live mock**: the mock builds each page on request (~40 ms per 50,000
  trades, and as long again to gzip it): on a small machine the server,
  not the client, may set the pace;
* **replayed pages**: the same pages, recorded once from the mock and served
  from memory by a minimal server process: the clients' own speed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from massivekit.auth import ApiKey
from massivekit.config import RestConfig
from massivekit.rest import AsyncRestClient, RestClient

KEY = "bench-rest-key"
TICKER = "AAPL"
GTE = 1704214800_000000000  # 2024-01-02 17:00 UTC: the last 500,000 trades of the day
LT = 1704243600_000000000
PAGE = 50_000
ROUNDS = 3
START_TIMEOUT = 60.0


@contextmanager
def mock_process() -> Iterator[str]:
    """The mock in a child process, pinned away from this one; yields its base URL."""
    command = [sys.executable, "-m", "massivekit", "mock", "--port", "0", "--key", KEY]
    child = subprocess.Popen([*command, "--seed", "1"], stdout=subprocess.PIPE, text=True)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # "listening on http://HOST:PORT"
        if not line.startswith("listening on "):
            raise RuntimeError(f"the mock did not start: {line!r}")
        _pin(child.pid, 1)
        _pin(0, 0)
        yield line.split()[-1]
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)  # the next benchmark of `make bench` starts afresh
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def _pin(pid: int, core: int) -> None:
    """Pin ``pid`` to the last core; this process (pid 0) to all the others."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        os.sched_setaffinity(pid, {cores[-1]} if core else set(cores[:-1]))


def record_pages(url: str, folder: Path) -> int:
    """Save the benchmark's pages, as the mock serves them, under ``folder``; return the count."""
    query = f"timestamp.gte={GTE}&timestamp.lt={LT}&limit={PAGE}"
    next_url: str | None = f"{url}/v3/trades/{TICKER}?{query}"
    count = 0
    while next_url:
        parts = urlsplit(next_url)
        request = urllib.request.Request(next_url, headers={"Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(request, timeout=START_TIMEOUT) as answer:
            body = answer.read()
        name = "first" if "cursor=" not in parts.query else parts.query
        (folder / f"{count:03d}.key").write_text(name)
        (folder / f"{count:03d}.json").write_bytes(body)
        next_url = msgspec.json.decode(body).get("next_url")
        count += 1
    return count


def _replay(folder: str, conn: Connection) -> None:
    """Child process: serve the recorded pages from memory (gzip at the mock's level 1)."""
    from aiohttp import web

    pages = {
        key.read_text(): key.with_suffix(".json").read_bytes()
        for key in sorted(Path(folder).glob("*.key"))
    }
    packed: dict[str, bytes] = {}
    for name, body in pages.items():
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        packed[name] = packer.compress(body) + packer.flush()

    async def page(request: web.Request) -> web.Response:
        name = request.query_string if "cursor" in request.query else "first"
        headers = {"Content-Type": "application/json", "X-Request-Id": "replay"}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=packed[name], headers=headers)
        return web.Response(body=pages[name], headers=headers)

    async def serve() -> None:
        app = web.Application()
        app.router.add_get(f"/v3/trades/{TICKER}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.Event().wait()  # until terminated

    asyncio.run(serve())


@contextmanager
def replay_process(url: str) -> Iterator[str]:
    """The benchmark's pages, recorded from the mock at ``url``, served by a child process.

    Both clients follow ``next_url`` by its path and query on their own base
    URL, so the recorded ``next_url`` (naming the mock's port) needs no rewrite.
    """
    with tempfile.TemporaryDirectory() as folder:
        record_pages(url, Path(folder))
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(target=_replay, args=(folder, child), daemon=True)
        process.start()
        try:
            if not parent.poll(START_TIMEOUT):
                raise RuntimeError("the replay server did not start")
            port = parent.recv()
            assert process.pid is not None
            _pin(process.pid, 1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.join(10)


def _timed(run: Callable[[str, bool], int], url: str, gzip: bool) -> float:
    start = time.perf_counter()
    count = run(url, gzip)
    return count / (time.perf_counter() - start)


def official(url: str, gzip: bool) -> int:
    """Items seen by the official client."""
    from massive import RESTClient

    client = RESTClient(KEY, base=url)
    client.headers["Accept-Encoding"] = "gzip" if gzip else "identity"
    count = 0
    for _ in client.list_trades(TICKER, timestamp_gte=GTE, timestamp_lt=LT, limit=PAGE):
        count += 1
    client.client.clear()
    return count


def ours_async(url: str, gzip: bool) -> int:
    """Items seen by ``AsyncRestClient``, on uvloop."""

    async def run() -> int:
        count = 0
        async with AsyncRestClient(config=_config(url, gzip)) as client:
            async for _ in client.list_trades(
                TICKER, timestamp_gte=GTE, timestamp_lt=LT, limit=PAGE
            ):
                count += 1
        return count

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dev dependency
        return asyncio.run(run())
    return uvloop.run(run())


def ours_sync(url: str, gzip: bool) -> int:
    """Items seen by ``RestClient``."""
    count = 0
    with RestClient(config=_config(url, gzip)) as client:
        for _ in client.list_trades(TICKER, timestamp_gte=GTE, timestamp_lt=LT, limit=PAGE):
            count += 1
    return count


def _config(url: str, gzip: bool) -> RestConfig:
    return replace(RestConfig(api_key=ApiKey(KEY), base_url=url), gzip=gzip)


CLIENTS: dict[str, Callable[[str, bool], int]] = {
    "official RESTClient": official,
    "massivekit async": ours_async,
    "massivekit sync": ours_sync,
}


def measure(url: str, rounds: int = ROUNDS) -> dict[tuple[str, bool], float]:
    """Median items/s per (client, gzip), clients alternating within each round."""
    rates: dict[tuple[str, bool], list[float]] = {}
    for _ in range(rounds):
        for gzip in (False, True):
            for name, run in CLIENTS.items():
                rates.setdefault((name, gzip), []).append(_timed(run, url, gzip))
    return {key: statistics.median(values) for key, values in rates.items()}


def report(title: str, rates: dict[tuple[str, bool], float]) -> None:
    """Print one table: items/s per client, plain and gzip, and the ratios to the official."""
    print(title)
    print(f"  {'client':<22} {'plain':>9} {'gzip':>9} {'ratio plain':>12} {'ratio gzip':>11}")
    base = {gz: rates[("official RESTClient", gz)] for gz in (False, True)}
    for name in CLIENTS:
        plain, gz = rates[(name, False)], rates[(name, True)]
        print(
            f"  {name:<22} {plain / 1e3:>7.0f} k {gz / 1e3:>7.0f} k "
            f"{plain / base[False]:>11.1f}x {gz / base[True]:>10.1f}x"
        )


def main() -> None:
    """Run the benchmark and print items/s and the ratios to the official client."""
    with mock_process() as url:
        count = ours_sync(url, False)  # warms the mock; also the item count
        live = measure(url)
        with replay_process(url) as replay_url:
            replayed = measure(replay_url)
    print(
        f"rest_pagination: list_trades items/s over {count:,} trades ({PAGE:,} per page), "
        f"median of {ROUNDS} rounds; target: massivekit >= 4x the official client"
    )
    report("live mock (pages built on request, in its own process):", live)
    report("replayed pages (the same pages served from memory):", replayed)


if __name__ == "__main__":
    main()
