"""A REST-only mock for the REST client's functional tests: real HTTP on loopback port 0.

:func:`rest_mock` serves the mock's REST routes (fixed seed and clock, so the
data are the same on every run) and watches every request: how many arrived,
with which query and headers, and lets a test await the n-th one. Two extra
routes stand in for behaviours the mock does not script:

* ``/test/pages``: three pages whose ``next_url`` carries ``apiKey=<the key>``,
  as the service does when the key came in the query string;
* ``/test/leaky-error``: a 400 whose body echoes the key;
* ``/test/loop``: a page whose ``next_url`` names itself, for ever;
* ``/test/bad-gzip``: a body that says gzip and is not;
* ``/test/tricky``: two pages whose items carry a ``next_url`` of their own,
  after the envelope's (a trap for a quick scan of the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from massivekit.mock.rest import RestFaults, RestStats, add_rest_routes

KEY = "rest-client-key-0123456789abcdef"
NOW_NS = int(datetime(2024, 6, 14, 21, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
SEED = 11

# A window of AAPL trades small enough for tests: 2024-01-02, 14:30:00 to 14:30:05 UTC.
WINDOW_GTE = 1704205800_000000000
WINDOW_LT = WINDOW_GTE + 5_000_000_000


@dataclass
class Seen:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]


@dataclass
class RestMock:
    """The running mock: its URL, fault switches, counters and a log of requests."""

    url: str
    faults: RestFaults
    stats: RestStats
    seen: list[Seen] = field(default_factory=list)
    arrived: asyncio.Condition | None = None

    async def wait_requests(self, count: int, within: float = 10.0) -> None:
        """Return once ``count`` requests have arrived (at most ``within`` seconds)."""
        assert self.arrived is not None
        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: len(self.seen) >= count)

    def paths(self) -> list[str]:
        """The paths of every request, in order."""
        return [s.path for s in self.seen]


def build_app(mock: RestMock) -> web.Application:
    """An aiohttp app: the mock's REST routes, the test routes, and a recording middleware."""

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        mock.seen.append(Seen(request.path, dict(request.query), CIMultiDict(request.headers)))
        if mock.arrived is not None:
            async with mock.arrived:
                mock.arrived.notify_all()
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/test/pages", _leaky_pages)
    app.router.add_get("/test/leaky-error", _leaky_error)
    app.router.add_get("/test/loop", _loop)
    app.router.add_get("/test/tricky", _tricky)
    app.router.add_get("/test/bogus", _leaky_error)
    app.router.add_get("/test/bad-gzip", _bad_gzip)
    add_rest_routes(
        app,
        keys=frozenset({KEY}),
        seed=SEED,
        faults=mock.faults,
        stats=mock.stats,
        clock=lambda: NOW_NS,
    )
    return app


async def _leaky_pages(request: web.Request) -> web.Response:
    page = int(request.query.get("page", "0"))
    body: dict[str, Any] = {
        "status": "OK",
        "request_id": f"rid-{page}",
        "results": [{"price": float(page), "size": 1.0, "id": str(page)}],
    }
    if page < 2:
        body["next_url"] = f"{request.url.origin()}/test/pages?page={page + 1}&apiKey={KEY}"
    return web.json_response(body, headers={"X-Request-Id": f"rid-{page}"})


async def _leaky_error(request: web.Request) -> web.Response:
    body = {"status": "ERROR", "request_id": "rid-leak", "error": f"bad apiKey={KEY} ({KEY})"}
    return web.json_response(body, status=400)


async def _bad_gzip(request: web.Request) -> web.Response:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    return web.Response(body=b"this is not gzip", headers=headers)


async def _loop(request: web.Request) -> web.Response:
    body = {
        "results": [{"id": "x"}],
        "next_url": f"{request.url.origin()}/test/loop?cursor=same",
    }
    return web.json_response(body)


async def _tricky(request: web.Request) -> web.Response:
    origin = request.url.origin()
    page = int(request.query.get("page", "0"))
    body: dict[str, Any] = {}
    if page == 0:
        body["next_url"] = f"{origin}/test/tricky?page=1"
    body["results"] = [{"id": str(page), "next_url": f"{origin}/test/bogus"}]
    return web.json_response(body)


@contextlib.asynccontextmanager
async def serve(port: int = 0) -> AsyncIterator[RestMock]:
    """Run a :class:`RestMock` on 127.0.0.1 (port 0: a free one), in the running loop."""
    mock = RestMock(url="", faults=RestFaults(), stats=RestStats(), arrived=asyncio.Condition())
    async with TestServer(build_app(mock), host="127.0.0.1", port=port) as server:
        mock.url = str(server.make_url("")).rstrip("/")
        yield mock


@contextlib.contextmanager
def threaded_mock() -> Iterator[RestMock]:
    """A :class:`RestMock` on its own loop thread, for tests of the blocking client."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    box: list[RestMock] = []

    async def main() -> None:
        async with serve() as mock:
            box.append(mock)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the mock did not start"
    try:
        yield box[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
