"""Every generated endpoint method, called once against the mock server.

Each method of :data:`ENDPOINTS` is called with plausible arguments on the
async client and on the sync client (the sync one from a worker thread, as
the mock shares the test's event loop); results must be typed models with
data in them, and list methods must page lazily.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest
from massive import RESTClient

from massivekit.mock.server import MockServer
from massivekit.rest import AsyncRestClient, Pagination, RawResponse, RestClient, _models
from massivekit.rest._endpoints import ENDPOINTS, EndpointInfo
from tests.functional.conftest import KEY

REQUIRED: dict[str, Any] = {
    "ticker": "AAPL",
    "multiplier": 1,
    "timespan": "day",
    "from_": "2024-01-02",
    "to": "2024-01-10",
    "date": "2024-01-02",
    "market_type": "stocks",
    "direction": "gainers",
    "underlying_asset": "SPY",
    "option_contract": "O:SPY250117C00560000",
    "filing_id": "0000320193-24-000006",
    "file_id": "1",
}
CRYPTO = {"from_": "BTC", "to": "USD"}
FOREX = {"from_": "EUR", "to": "USD"}
OVERRIDES: dict[str, dict[str, Any]] = {
    "get_last_crypto_trade": CRYPTO,
    "get_historic_crypto_trades": CRYPTO,
    "get_crypto_daily_open_close_agg": CRYPTO,
    "get_last_forex_quote": FOREX,
    "get_real_time_currency_conversion": FOREX,
    "get_historic_forex_quotes": FOREX,
    "get_options_contract": {"ticker": "O:SPY250117C00560000"},
    "get_snapshot_crypto_book": {"ticker": "X:BTCUSD"},
    "list_futures_aggregates": {"ticker": "ESZ5"},
    "list_futures_quotes": {"ticker": "ESZ5"},
    "list_futures_trades": {"ticker": "ESZ5"},
}
TAKE = 3


def _arguments(info: EndpointInfo) -> dict[str, Any]:
    kwargs = {p.name: REQUIRED[p.name] for p in info.params if p.required}
    kwargs.update(OVERRIDES.get(info.name, {}))
    if info.paginated and any(p.name == "limit" for p in info.params):
        kwargs["limit"] = TAKE  # small pages: the pager must follow next_url
    return kwargs


def _check(info: EndpointInfo, value: Any) -> None:
    model = getattr(_models, info.model)
    assert not isinstance(value, RawResponse)
    items = value if isinstance(value, list) else [value]
    if info.result.startswith("list[") or info.paginated:
        assert isinstance(value, list)
        assert items, f"{info.name} returned nothing"
    for item in items:
        assert isinstance(item, model), (info.name, type(item))
        assert any(v is not None for v in msgspec.structs.astuple(item)), info.name


async def _call_async(client: AsyncRestClient, info: EndpointInfo) -> Any:
    method = getattr(client, info.name)
    kwargs = _arguments(info)
    if info.paginated:
        pager = method(**kwargs, pagination=Pagination.max_items(TAKE))
        return [item async for item in pager]
    return await method(**kwargs)


def _call_sync(client: RestClient, info: EndpointInfo) -> Any:
    method = getattr(client, info.name)
    kwargs = _arguments(info)
    if info.paginated:
        return list(itertools.islice(method(**kwargs), TAKE))
    return method(**kwargs)


@pytest.mark.parametrize("info", ENDPOINTS, ids=lambda info: info.name)
async def test_async_method(mock: MockServer, info: EndpointInfo, scale: float) -> None:
    async with (
        asyncio.timeout(10 * scale),
        AsyncRestClient(api_key=KEY, base_url=mock.url) as client,
    ):
        value = await _call_async(client, info)
    _check(info, value)


@pytest.mark.parametrize("info", ENDPOINTS, ids=lambda info: info.name)
async def test_sync_method(mock: MockServer, info: EndpointInfo, scale: float) -> None:
    def call() -> Any:
        with RestClient(api_key=KEY, base_url=mock.url) as client:
            return _call_sync(client, info)

    async with asyncio.timeout(10 * scale):
        value = await asyncio.to_thread(call)
    _check(info, value)


async def test_list_methods_follow_pages(mock: MockServer, scale: float) -> None:
    async with (
        asyncio.timeout(10 * scale),
        AsyncRestClient(api_key=KEY, base_url=mock.url) as client,
    ):
        pages = client.list_futures_contracts(limit=2, pagination=Pagination.max_items(5)).pages()
        sizes = [len(page.items) async for page in pages]
        trades = client.list_trades(
            "AAPL", timestamp="2024-01-02", limit=4, pagination=Pagination.NONE
        )
        first = [page async for page in trades.pages()]
    assert sizes == [2, 2, 1]
    assert len(first) == 1
    assert len(first[0].items) == 4
    assert first[0].next_url is not None


async def test_raw_returns_the_undecoded_answer(mock: MockServer, scale: float) -> None:
    async with (
        asyncio.timeout(10 * scale),
        AsyncRestClient(api_key=KEY, base_url=mock.url) as client,
    ):
        page = await client.list_benzinga_news(limit=2, raw=True)
        details = await client.get_ticker_details("AAPL", raw=True)
    assert isinstance(page, RawResponse)
    assert page.status == 200
    assert len(page.json()["results"]) == 2
    assert isinstance(details, RawResponse)
    assert details.json()["results"]["ticker"] == "AAPL"


async def test_path_tickers_and_filters_reach_the_mock(mock: MockServer, scale: float) -> None:
    async with (
        asyncio.timeout(10 * scale),
        AsyncRestClient(api_key=KEY, base_url=mock.url) as client,
    ):
        trades = [t async for t in client.list_futures_trades("ESZ5", limit=3)]
        ratings = [
            r
            async for r in client.list_benzinga_ratings(
                ticker_any_of=["MSFT", "NVDA"], pagination=Pagination.max_items(10)
            )
        ]
        contract = await client.get_options_contract("O:SPY250117C00560000")
        crypto = await client.get_snapshot_ticker("crypto", "X:BTCUSD")  # locale/global
        start = datetime(2024, 1, 2, tzinfo=UTC)  # a datetime travels as Unix ms
        bars = await client.get_aggs("AAPL", 1, "day", start, date(2024, 1, 10))
    assert trades
    assert {t.ticker for t in trades} == {"ESZ5"}
    assert {r.ticker for r in ratings} == {"MSFT", "NVDA"}
    assert contract.ticker == "O:SPY250117C00560000"
    assert crypto.ticker == "X:BTCUSD"
    assert bars
    assert all(bar.timestamp is not None for bar in bars)
    first = bars[0].to_datetime("timestamp")
    assert first is not None
    assert first >= start
    assert first.date() == start.date()  # a daily bar starts at midnight New York time


async def test_the_official_client_reads_the_families_beyond_the_spec(
    mock: MockServer, scale: float
) -> None:
    def call() -> tuple[list[Any], list[Any]]:
        official = RESTClient(api_key=KEY, base=mock.url, retries=0)
        try:
            futures = list(itertools.islice(official.list_futures_trades("ESZ5", limit=2), 3))
            ratios = list(itertools.islice(official.list_financials_ratios(limit=2), 3))
        finally:
            official.client.clear()  # close its pooled sockets now, not at garbage collection
        return futures, ratios

    async with asyncio.timeout(10 * scale):
        futures, ratios = await asyncio.to_thread(call)
    assert len(futures) == 3
    assert futures[0].ticker == "ESZ5"
    assert futures[0].price is not None
    assert len(ratios) == 3
    assert ratios[0].ticker is not None
