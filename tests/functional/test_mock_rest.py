"""The REST mock over real HTTP: a loopback aiohttp server on port 0 and an aiohttp client."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer

from massivekit.mock import rest as rest_module
from massivekit.mock._rest_endpoints import ENDPOINTS, EndpointSpec
from massivekit.mock.rest import REST_STATS, RestFaults, RestStats, add_rest_routes, sample_path
from massivekit.mock.rest_instruments import AssetClass, day_start_ns
from massivekit.mock.rest_schema import validate_value
from massivekit.mock.rest_series import TickSeries

KEY = "rest-functional-key"
SEED = 5
NOW_NS = int(datetime(2024, 6, 14, 21, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
BEARER = {"Authorization": f"Bearer {KEY}"}


@dataclass
class RestMock:
    url: yarl.URL
    faults: RestFaults
    stats: RestStats
    session: aiohttp.ClientSession
    scale: float

    async def get(self, path: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        """One request, bounded in time like every wait in these tests."""
        headers = kwargs.pop("headers", BEARER)
        url = self.url.join(yarl.URL(path, encoded=True))
        async with asyncio.timeout(10 * self.scale), self.session.get(url, headers=headers) as r:
            return r, await r.read()

    async def get_json(self, path: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, Any]:
        response, body = await self.get(path, **kwargs)
        return response, json.loads(body)


@pytest.fixture
async def rest(scale: float) -> AsyncIterator[RestMock]:
    app = web.Application()
    faults = RestFaults()
    add_rest_routes(app, keys=frozenset({KEY}), seed=SEED, faults=faults, clock=lambda: NOW_NS)
    async with (
        TestServer(app, host="127.0.0.1", port=0) as server,
        aiohttp.ClientSession() as session,
    ):
        yield RestMock(server.make_url("/"), faults, app[REST_STATS], session, scale)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.operation_id)
async def test_every_endpoint_answers_200_with_valid_data(
    rest: RestMock, endpoint: EndpointSpec, scale: float
) -> None:
    async with asyncio.timeout(10 * scale):
        response, body = await rest.get_json(sample_path(endpoint))
    assert response.status == 200, body
    assert validate_value(endpoint.response, body) == []
    if isinstance(body, dict) and "request_id" in body:
        assert response.headers["X-Request-Id"] == body["request_id"]


async def _walk(
    rest: RestMock, path: str, headers: dict[str, str] | None = None
) -> tuple[list[Any], int]:
    rows: list[Any] = []
    pages = 0
    next_path: str | None = path
    while next_path is not None:
        response, body = await rest.get_json(next_path, headers=headers or BEARER)
        assert response.status == 200, body
        rows += body["results"]
        pages += 1
        next_url = body.get("next_url")
        if next_url is not None:
            parsed = yarl.URL(next_url)
            assert parsed.host == rest.url.host
            assert parsed.port == rest.url.port
            assert set(parsed.query) == {"cursor"}
        next_path = None if next_url is None else yarl.URL(next_url).path_qs
    return rows, pages


async def test_walks_over_100k_trades_without_gaps(rest: RestMock, scale: float) -> None:
    day = date(2024, 6, 14)
    lo = day_start_ns(day, AssetClass.STOCKS) + 5 * 3_600 * 10**9  # 05:00 ET
    hi = lo + 2 * 3_600 * 10**9
    path = f"/v3/trades/AAPL?timestamp.gte={lo}&timestamp.lt={hi}&limit=50000&order=asc"
    async with asyncio.timeout(20 * scale):
        rows, pages = await _walk(rest, path)
    stamps = [row["sip_timestamp"] for row in rows]
    series = TickSeries("AAPL", "trades", SEED)
    day_rows = series.day_rows(day)
    assert day_rows is not None
    expected = day_rows.index_at(hi) - day_rows.index_at(lo)  # the arithmetic of the layout
    assert abs(expected - (hi - lo) / day_rows.step) <= 1
    assert len(rows) == expected == series.count(lo, hi) >= 100_000
    assert pages == -(-expected // 50_000)
    assert all(a < b for a, b in itertools.pairwise(stamps))  # strictly monotonic
    assert len({row["id"] for row in rows}) == len(rows)
    assert lo <= stamps[0]
    assert stamps[-1] < hi


async def test_descending_walk_is_the_ascending_one_reversed(rest: RestMock, scale: float) -> None:
    lo = day_start_ns(date(2024, 6, 13), AssetClass.STOCKS) + 10 * 3_600 * 10**9
    base = f"/v3/trades/MSFT?timestamp.gte={lo}&timestamp.lt={lo + 3 * 3_600 * 10**9}&limit=50000"
    async with asyncio.timeout(30 * scale):
        up, _ = await _walk(rest, base + "&order=asc")
        down, _ = await _walk(rest, base + "&order=desc")
        default, _ = await _walk(rest, base)
    assert len(up) == 3 * 62_500  # a million trades over a 16-hour session
    assert [r["sip_timestamp"] for r in down] == [r["sip_timestamp"] for r in reversed(up)]
    assert default[0] == down[0]  # trades default to newest first


async def test_plain_timestamp_selects_one_day(rest: RestMock) -> None:
    _, body = await rest.get_json("/v3/quotes/AAPL?timestamp=2024-06-14&limit=10&order=asc")
    first = body["results"][0]["sip_timestamp"]
    assert first >= day_start_ns(date(2024, 6, 14), AssetClass.STOCKS) + 4 * 3_600 * 10**9
    _, weekend = await rest.get_json("/v3/trades/AAPL?timestamp=2024-06-15")
    assert weekend["results"] == []
    assert "next_url" not in weekend


async def test_aggregates_paginate(rest: RestMock, scale: float) -> None:
    async with asyncio.timeout(20 * scale):
        rows, pages = await _walk(
            rest, "/v2/aggs/ticker/AAPL/range/1/minute/2024-06-10/2024-06-14?limit=1000"
        )
    assert len(rows) == 4 * 960 + 811  # Friday ends at the clock: 04:00-17:30 ET, both included
    assert pages == 5
    assert all(r["l"] <= min(r["o"], r["c"]) and max(r["o"], r["c"]) <= r["h"] for r in rows)
    assert [r["t"] for r in rows] == sorted({r["t"] for r in rows})


async def test_twins_answer_in_their_own_shape(rest: RestMock) -> None:
    _, crypto = await rest.get_json("/v3/trades/X:BTCUSD?limit=3")
    assert crypto["results"]
    assert all("sip_timestamp" not in r for r in crypto["results"])
    _, option = await rest.get_json("/v3/trades/O:SPY240621C00530000?timestamp=2024-06-14&limit=3")
    assert option["results"]
    assert all("id" not in r for r in option["results"])
    _, fx = await rest.get_json("/v3/quotes/C:EURUSD?limit=3")
    assert set(fx["results"][0]) == {
        "ask_exchange",
        "ask_price",
        "bid_exchange",
        "bid_price",
        "participant_timestamp",
    }


async def test_percent_encoded_tickers_route_like_plain_ones(rest: RestMock) -> None:
    _, option = await rest.get_json(
        "/v3/trades/O%3ASPY240621C00530000?timestamp=2024-06-14&limit=3"
    )
    assert option["results"]
    assert all("id" not in r for r in option["results"])  # served by the options twin
    response, pair = await rest.get_json(
        "/v2/snapshot/locale/global/markets/forex/tickers/C:EUR%2FUSD"
    )
    assert response.status == 200
    assert 0.75 < pair["ticker"]["lastQuote"]["a"] / 1.08 < 1.3


@pytest.mark.parametrize("how", ["bearer", "query", "missing"])
async def test_bad_keys_get_401(rest: RestMock, how: str) -> None:
    headers = {"Authorization": "Bearer wrong"} if how == "bearer" else {}
    query = "?apiKey=wrong" if how == "query" else ""
    response, body = await rest.get_json(f"/v3/trades/AAPL{query}", headers=headers)
    assert response.status == 401
    assert body["status"] == "ERROR"
    assert body["error"] == ("API Key was not provided" if how == "missing" else "Unknown API Key")
    assert response.headers["X-Request-Id"] == body["request_id"]


async def test_budget_exhaustion_answers_429_with_retry_after(rest: RestMock) -> None:
    rest.faults.request_budget = 3
    rest.faults.budget_window = 30.0
    statuses = [(await rest.get("/v1/marketstatus/now"))[0].status for _ in range(3)]
    assert statuses == [200, 200, 200]
    response, body = await rest.get_json("/v1/marketstatus/now")
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert body["status"] == "ERROR"
    other, _ = await rest.get("/v1/marketstatus/now", headers={"Authorization": "Bearer nobody"})
    assert other.status == 401  # the budget is per key; unknown keys never reach it
    rest.faults.retry_after = 2.5
    response, _ = await rest.get("/v1/marketstatus/now")
    assert response.headers["Retry-After"] == "3"  # whole seconds, as HTTP wants
    rest.faults.request_budget = None
    assert (await rest.get("/v1/marketstatus/now"))[0].status == 200


async def test_5xx_bursts(rest: RestMock) -> None:
    rest.faults.inject_5xx(3, status=502)
    statuses = [(await rest.get("/v2/last/trade/AAPL"))[0].status for _ in range(4)]
    assert statuses == [502, 502, 502, 200]
    assert rest.stats.by_status[502] == 3


async def test_malformed_json(rest: RestMock) -> None:
    rest.faults.malformed_json_next(1)
    response, raw = await rest.get("/v2/last/trade/AAPL")
    assert response.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    response, raw = await rest.get("/v2/last/trade/AAPL")
    assert json.loads(raw)["status"] == "OK"


async def test_gzip_when_asked(rest: RestMock) -> None:
    path = "/v3/trades/AAPL?timestamp=2024-06-14&limit=1000"
    zipped, body = await rest.get_json(path, headers={**BEARER, "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(body["results"]) == 1000
    plain, _ = await rest.get(path, headers={**BEARER, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers


async def test_next_url_carries_the_key_only_when_the_request_did(rest: RestMock) -> None:
    path = "/v3/reference/tickers?limit=5"
    _, by_header = await rest.get_json(path)
    assert "apiKey" not in yarl.URL(by_header["next_url"]).query
    _, by_query = await rest.get_json(f"{path}&apiKey={KEY}", headers={})
    next_url = yarl.URL(by_query["next_url"])
    assert next_url.query["apiKey"] == KEY
    assert str(next_url).startswith(str(rest.url.origin()))
    _, second = await rest.get_json(next_url.path_qs, headers={})
    assert [r["ticker"] for r in second["results"]] > [r["ticker"] for r in by_query["results"]]


async def test_reference_list_walk_is_complete(rest: RestMock, scale: float) -> None:
    async with asyncio.timeout(20 * scale):
        rows, pages = await _walk(rest, "/v3/reference/tickers?market=stocks&limit=1000")
    tickers = [r["ticker"] for r in rows]
    assert tickers == sorted(set(tickers))
    assert {"AAPL", "MSFT", "SPY"} <= set(tickers)
    assert pages == -(-len(tickers) // 1000)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v3/trades/AAPL?limit=abc", "limit"),
        ("/v3/trades/AAPL?limit=50001", "limit"),
        ("/v3/trades/AAPL?order=sideways", "order"),
        ("/v3/trades/AAPL?timestamp.gte=yesterday", "timestamp.gte"),
        ("/v3/trades/AAPL?cursor=not-a-cursor", "cursor"),
        ("/v2/aggs/ticker/AAPL/range/1/fortnight/2024-01-01/2024-02-01", "timespan"),
        ("/v2/aggs/ticker/AAPL/range/x/day/2024-01-01/2024-02-01", "multiplier"),
        ("/v3/reference/tickers?limit=1001", "limit"),
    ],
)
async def test_bad_parameters_answer_400(rest: RestMock, path: str, fragment: str) -> None:
    response, body = await rest.get_json(path)
    assert response.status == 400
    assert body["status"] == "ERROR"
    assert fragment in body["error"]
    assert response.headers["X-Request-Id"] == body["request_id"]


async def test_unknown_path_answers_404_json(rest: RestMock) -> None:
    response, body = await rest.get_json("/v3/nothing/here")
    assert response.status == 404
    assert body == {
        "status": "NOT_FOUND",
        "request_id": response.headers["X-Request-Id"],
        "message": "Route not found",
    }


async def test_handler_crash_answers_500(rest: RestMock, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(endpoint: EndpointSpec) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(rest_module, "handler_for", explode)
    response, body = await rest.get_json("/v2/last/trade/AAPL")
    assert response.status == 500
    assert body["status"] == "ERROR"
    monkeypatch.undo()
    assert (await rest.get("/v2/last/trade/AAPL"))[0].status == 200


async def test_stats_count_what_reached_the_mock(rest: RestMock) -> None:
    for _ in range(3):
        await rest.get("/v2/last/trade/AAPL")
    await rest.get("/v3/nothing")
    await rest.get("/v2/last/trade/TSLA", headers={})
    assert rest.stats.total == 5
    assert rest.stats.by_path["/v2/last/trade/AAPL"] == 3
    assert rest.stats.by_route["/v2/last/trade/{stocksTicker}"] == 4
    assert rest.stats.by_status == {200: 3, 404: 1, 401: 1}


async def test_latency_delays_answers(rest: RestMock) -> None:
    rest.faults.latency = 0.05
    start = time.monotonic()
    response, _ = await rest.get("/v1/marketstatus/now")
    assert response.status == 200
    assert time.monotonic() - start >= 0.05
