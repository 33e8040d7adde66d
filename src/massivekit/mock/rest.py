"""The REST half of the mock Massive server, as aiohttp routes.

Mount it on any :class:`aiohttp.web.Application`::

    faults = RestFaults()
    add_rest_routes(app, keys=frozenset({"test-key"}), seed=7, faults=faults)
    stats = app[REST_STATS]            # requests that reached the mock

Every path of the generated endpoint table answers like the service does:
``Authorization: Bearer <key>`` or ``apiKey=<key>``, the ``{"status": "OK",
"request_id": ...}`` envelope, ``next_url`` cursors that carry the key only when
it came as a query parameter, ``X-Request-Id``, gzip on ``Accept-Encoding``,
400/401/404/429/5xx bodies in the service's shape. Faults are switched on a
live :class:`RestFaults`.

Paths that differ only by the name of a parameter (``/v3/trades/{stockTicker}``
and its ``x-massive-ignore`` twins ``{optionsTicker}``, ``{cryptoTicker}``)
share one aiohttp route; the request's ticker prefix (``O:``, ``X:``, ``C:``,
``I:``) picks the twin whose schema answers, as on the real service.

Unknown paths under ``/v1``, ``/v2``, ``/v3`` and ``/vX`` get the service's
JSON 404; other prefixes are left to whoever else mounts routes on the app
(the WebSocket half serves ``/stocks``, ``/options``...). Answers are built on
the event loop: a 50,000-row page of trades takes about 40 ms to make and
encode; bodies over 256 KiB are gzipped in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import msgspec
from aiohttp import web

from massivekit.mock._rest_endpoints import ENDPOINTS, EndpointSpec
from massivekit.mock.rest_extra import EXTRA_ENDPOINTS, family_list, is_extra
from massivekit.mock.rest_handlers import (
    Call,
    Handler,
    NotFound,
    Reply,
    aggregates,
    grouped_daily,
    indicator,
    open_close,
    previous_close,
    reference_table,
    synthesized,
    ticks,
)
from massivekit.mock.rest_instruments import AssetClass, asset_class, parse_option
from massivekit.mock.rest_lists import option_snapshot, paged_list
from massivekit.mock.rest_query import BadRequest, decode_cursor, encode_cursor, validate

log = logging.getLogger("massivekit.mock.rest")

RATE_LIMIT_MESSAGE: Final = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://massive.com/pricing"
)
_GZIP_MIN_BYTES: Final = 1024
_GZIP_THREAD_BYTES: Final = 256 * 1024  # zlib releases the GIL: big bodies go to a thread
_encoder: Final = msgspec.json.Encoder()


@dataclass
class RestFaults:
    """Fault switches of the REST mock; change them while it runs.

    Attributes:
        request_budget: requests a key may make per ``budget_window`` seconds
            before getting ``429`` with ``Retry-After``; ``None`` for no limit.
        budget_window: length of the budget window, in seconds.
        retry_after: the ``Retry-After`` of a 429, in seconds; ``None`` says
            the time left in the current budget window.
        latency: seconds every request waits before it is answered.
        fail_next: how many coming requests answer ``fail_status``.
        fail_status: the status of injected failures (5xx).
        malformed_next: how many coming successful answers carry truncated JSON.
    """

    request_budget: int | None = None
    budget_window: float = 60.0
    retry_after: float | None = None
    latency: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    malformed_next: int = 0

    def inject_5xx(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (before auth, like a proxy would)."""
        self.fail_next, self.fail_status = count, status

    def malformed_json_next(self, count: int) -> None:
        """Answer the next ``count`` successful requests with a truncated JSON body."""
        self.malformed_next = count

    def _take_failure(self) -> int | None:
        if self.fail_next <= 0:
            return None
        self.fail_next -= 1
        return self.fail_status

    def _take_malformed(self) -> bool:
        if self.malformed_next <= 0:
            return False
        self.malformed_next -= 1
        return True


@dataclass
class RestStats:
    """What reached the REST mock: totals per request path, per route and per status."""

    total: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def reset(self) -> None:
        """Forget every count."""
        self.total = 0
        self.by_path.clear()
        self.by_route.clear()
        self.by_status.clear()


REST_STATS: Final = web.AppKey("massivekit_rest_stats", RestStats)
"""Where :func:`add_rest_routes` leaves its :class:`RestStats` on the application."""

KeyCheck = Callable[[str], bool] | frozenset[str]


class _Budget:
    """Fixed windows of ``request_budget`` requests per key (what the free plan enforces)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def charge(self, key: str, faults: RestFaults) -> float | None:
        """Count one request; return seconds to wait when the budget is spent."""
        if faults.request_budget is None:
            return None
        now = time.monotonic()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= faults.budget_window:
            start, used = now, 0
        if used >= faults.request_budget:
            return start + faults.budget_window - now
        self._windows[key] = (start, used + 1)
        return None


def add_rest_routes(
    app: web.Application,
    *,
    keys: KeyCheck,
    seed: int,
    faults: RestFaults,
    stats: RestStats | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> None:
    """Register a route for every REST endpoint of the generated table on ``app``.

    Args:
        app: the application (not yet started) to add routes to.
        keys: accepted API keys, as a set or a predicate.
        seed: makes every answer reproducible.
        faults: live fault switches.
        stats: where to count requests; a new one is made (and put in
            ``app[REST_STATS]``) if omitted.
        clock: Unix nanoseconds now; data after it does not exist yet.
    """
    counter = stats if stats is not None else RestStats()
    app[REST_STATS] = counter
    allowed = keys.__contains__ if isinstance(keys, frozenset) else keys
    server = _RestServer(allowed, seed, faults, counter, clock)
    for shape, variants in _shapes((*ENDPOINTS, *EXTRA_ENDPOINTS)).items():
        app.router.add_get(shape, server.route(variants))
    for prefix in ("/v1", "/v2", "/v3", "/vX"):
        app.router.add_route("*", prefix + "/{tail:.*}", server.not_found)


def _shapes(endpoints: Sequence[EndpointSpec]) -> dict[str, list[EndpointSpec]]:
    """Group endpoints by URL shape; aiohttp gets ``{p0}``, ``{p1}``... placeholders."""
    shapes: dict[str, list[EndpointSpec]] = {}
    for endpoint in endpoints:
        shape = endpoint.path
        for i, name in enumerate(_names(endpoint)):
            shape = shape.replace(f"{{{name}}}", f"{{p{i}}}", 1)
        shapes.setdefault(shape, []).append(endpoint)
    for variants in shapes.values():
        variants.sort(key=lambda e: e.ignored)  # the served (non-ignored) twin first
    return shapes


_PARAM_CLASS: Final = {
    "stocksTicker": AssetClass.STOCKS,
    "stockTicker": AssetClass.STOCKS,
    "optionsTicker": AssetClass.OPTIONS,
    "cryptoTicker": AssetClass.CRYPTO,
    "fxTicker": AssetClass.FX,
    "forexTicker": AssetClass.FX,
    "indicesTicker": AssetClass.INDICES,
}


def _names(endpoint: EndpointSpec) -> list[str]:
    return re.findall(r"\{([^}]+)\}", endpoint.path)


def pick_variant(variants: Sequence[EndpointSpec], values: Sequence[str]) -> EndpointSpec:
    """The twin whose ticker parameter fits the request's ticker, else the served one."""
    if len(variants) > 1 and values:
        wanted = asset_class(values[0])
        for endpoint in variants:
            if _PARAM_CLASS.get(_names(endpoint)[0]) is wanted:
                return endpoint
    return variants[0]


def handler_for(endpoint: EndpointSpec) -> Handler:
    """The function that builds the answer of ``endpoint``."""
    path = endpoint.path
    if is_extra(endpoint):
        return family_list
    if path.startswith(("/v3/trades/", "/v3/quotes/")):
        return ticks(path.split("/")[2])
    if path.startswith("/v2/aggs/ticker/"):
        return aggregates if "/range/" in path else previous_close
    if path.startswith("/v2/aggs/grouped/"):
        return grouped_daily
    if path.startswith("/v1/open-close/"):
        return open_close
    if path.startswith("/v1/indicators/"):
        return indicator
    if path in ("/v3/reference/exchanges", "/v3/reference/tickers/types"):
        return reference_table
    if path == "/v3/snapshot/options/{underlyingAsset}/{optionContract}":
        return _option_contract
    results = endpoint.response.get("properties", {}).get("results", {})
    names = {p.name for p in endpoint.params}
    if endpoint.paginate is not None or ("limit" in names and results.get("type") == "array"):
        return paged_list
    return synthesized


def _option_contract(call: Call) -> Reply:
    contract = parse_option(call.path["optionContract"])
    if contract is None:
        raise BadRequest(f"invalid optionContract: {call.path['optionContract']!r}")
    return Reply(
        {"status": "OK", "request_id": call.request_id, "results": option_snapshot(call, contract)}
    )


def _error(status: int, request_id: str, message: str) -> dict[str, Any]:
    if status == 404:
        return {"status": "NOT_FOUND", "request_id": request_id, "message": message}
    return {"status": "ERROR", "request_id": request_id, "error": message}


class _RestServer:
    """The request pipeline: count, delay, faults, auth, budget, handler, encoding."""

    def __init__(
        self,
        allowed: Callable[[str], bool],
        seed: int,
        faults: RestFaults,
        stats: RestStats,
        clock: Callable[[], int],
    ) -> None:
        self.allowed = allowed
        self.seed = seed
        self.faults = faults
        self.stats = stats
        self.clock = clock
        self.budget = _Budget()

    def route(
        self, variants: list[EndpointSpec]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """An aiohttp handler serving one URL shape."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, variants)

        return handle

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        """Unknown path under a REST prefix: the service's 404 body."""
        rid = secrets.token_hex(16)
        self._count(request, "")
        return await self._respond(request, 404, _error(404, rid, "Route not found"), rid)

    async def serve(self, request: web.Request, variants: list[EndpointSpec]) -> web.StreamResponse:
        """Answer one request; no exception escapes (unexpected ones become 500)."""
        rid = secrets.token_hex(16)
        self._count(request, variants[0].path)
        try:
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            return await self._serve(request, variants, rid)
        except BadRequest as exc:
            return await self._respond(request, 400, _error(400, rid, str(exc)), rid)
        except NotFound as exc:
            return await self._respond(request, 404, _error(404, rid, str(exc)), rid)
        except Exception:
            log.exception("= REST handler failed on %s", request.path)
            return await self._respond(request, 500, _error(500, rid, "Internal server error"), rid)

    def _count(self, request: web.Request, route: str) -> None:
        self.stats.total += 1
        self.stats.by_path[request.path] += 1
        self.stats.by_route[route] += 1

    async def _serve(
        self, request: web.Request, variants: list[EndpointSpec], rid: str
    ) -> web.StreamResponse:
        failure = self.faults._take_failure()
        if failure is not None:
            return await self._respond(
                request, failure, _error(failure, rid, HTTPStatus(failure).phrase), rid
            )
        key, in_query = _credentials(request)
        if not key or not self.allowed(key):
            message = "Unknown API Key" if key else "API Key was not provided"
            return await self._respond(request, 401, _error(401, rid, message), rid)
        wait = self.budget.charge(key, self.faults)
        if wait is not None:
            fixed = self.faults.retry_after
            seconds = max(1, math.ceil(wait)) if fixed is None else max(0, math.ceil(fixed))
            headers = {"Retry-After": str(seconds)}
            return await self._respond(
                request, 429, _error(429, rid, RATE_LIMIT_MESSAGE), rid, headers
            )
        call = self._call(request, variants, rid)
        reply = handler_for(call.endpoint)(call)
        body = reply.body
        if reply.resume is not None and isinstance(body, dict):
            state = {"q": dict(call.query), **reply.resume}
            query = {"cursor": encode_cursor(state)}
            if in_query:
                query["apiKey"] = key  # the service echoes a query-string key into next_url
            body["next_url"] = str(request.url.origin().with_path(request.path).with_query(query))
        return await self._respond(request, 200, body, rid)

    def _call(self, request: web.Request, variants: list[EndpointSpec], rid: str) -> Call:
        values = [request.match_info[f"p{i}"] for i in range(len(_names(variants[0])))]
        endpoint = pick_variant(variants, values)
        path = dict(zip(_names(endpoint), values, strict=True))
        query = {k: v for k, v in request.query.items() if k != "apiKey"}
        state: Mapping[str, Any] | None = None
        if "cursor" in query:
            decoded = decode_cursor(query["cursor"])
            query = {str(k): str(v) for k, v in decoded.pop("q", {}).items()}
            state = decoded
        validate(endpoint, path, query)
        return Call(endpoint, path, query, state, self.seed, self.clock(), rid)

    async def _respond(
        self,
        request: web.Request,
        status: int,
        body: Any,
        rid: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.StreamResponse:
        self.stats.by_status[status] += 1
        data = _encoder.encode(body)
        if status == 200 and self.faults._take_malformed():
            data = data[: max(1, len(data) // 2)]  # cut mid-document: invalid JSON
        out_headers = {"X-Request-Id": rid, "Content-Type": "application/json", **(headers or {})}
        if len(data) >= _GZIP_MIN_BYTES and "gzip" in request.headers.get("Accept-Encoding", ""):
            data = await _gzip(data)
            out_headers["Content-Encoding"] = "gzip"
            out_headers["Vary"] = "Accept-Encoding"
        return web.Response(status=status, body=data, headers=out_headers)


def _credentials(request: web.Request) -> tuple[str | None, bool]:
    """The API key and whether it came in the query string (``apiKey=``)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None, False
    key = request.query.get("apiKey")
    return (key or None), key is not None


async def _gzip(data: bytes) -> bytes:
    # Level 1: a 50,000-trade page is ~10 MB of JSON; speed matters more than ratio.
    def compress() -> bytes:
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        return packer.compress(data) + packer.flush()

    if len(data) < _GZIP_THREAD_BYTES:
        return compress()
    return await asyncio.to_thread(compress)


_SAMPLE_VALUES: Final = {
    "stocksTicker": "AAPL",
    "stockTicker": "AAPL",
    "ticker": "AAPL",
    "id": "AAPL",
    "optionsTicker": "O:SPY250117C00560000",
    "options_ticker": "O:SPY250117C00560000",
    "optionContract": "O:SPY250117C00560000",
    "underlyingAsset": "SPY",
    "cryptoTicker": "X:BTCUSD",
    "fxTicker": "C:EURUSD",
    "forexTicker": "C:EURUSD",
    "indicesTicker": "I:SPX",
    "multiplier": "1",
    "timespan": "day",
    "from": "2024-01-02",
    "to": "2024-01-10",
    "date": "2024-01-02",
    "direction": "gainers",
    "filing_id": "0000320193-24-000006",
    "file_id": "1",
}


def sample_path(endpoint: EndpointSpec) -> str:
    """A concrete request path for ``endpoint`` that the mock answers with 200.

    Useful for smoke tests and demos: well-known tickers, a past trading day,
    currency pairs where the path takes ``{from}/{to}`` symbols.
    """
    path = endpoint.path
    if "{from}/{to}" in path and "/range/" not in path:
        base = "BTC" if "crypto" in path else "EUR"
        path = path.replace("{from}", base).replace("{to}", "USD")
    for name in _names(endpoint):
        path = path.replace(f"{{{name}}}", _SAMPLE_VALUES.get(name, "AAPL"))
    return path
