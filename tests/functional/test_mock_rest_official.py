"""The official ``massive`` client, unchanged, against the REST mock.

The client is synchronous (urllib3), so the mock runs on its own event loop in
a background thread for the module; each test talks to it over loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp import web
from massive import RESTClient
from massive.exceptions import BadResponse
from massive.rest.models import Agg, OptionContractSnapshot, Ticker, Trade

from massivekit.mock.rest import REST_STATS, RestFaults, RestStats, add_rest_routes
from massivekit.mock.rest_catalog import option_chain, universe
from massivekit.mock.rest_instruments import REFERENCE_PRICES, AssetClass, day_start_ns
from massivekit.mock.rest_series import TickSeries

KEY = "official-client-key"
SEED = 9
NOW_NS = int(datetime(2024, 6, 14, 21, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
DAY = date(2024, 6, 14)


@dataclass
class ThreadedMock:
    url: str
    faults: RestFaults
    stats: RestStats


@pytest.fixture(scope="module")
def mock_url(scale: float) -> Iterator[ThreadedMock]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        faults = RestFaults()
        add_rest_routes(app, keys=frozenset({KEY}), seed=SEED, faults=faults, clock=lambda: NOW_NS)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        state.update(
            runner=runner, mock=ThreadedMock(f"http://{host}:{port}", faults, app[REST_STATS])
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            started.set()
        loop.run_forever()
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="rest-mock-loop", daemon=True)
    thread.start()
    assert started.wait(10 * scale)
    assert "mock" in state, "the mock failed to start"
    yield state["mock"]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10 * scale)
    assert not thread.is_alive()


@pytest.fixture
def client(mock_url: ThreadedMock) -> RESTClient:
    return RESTClient(api_key=KEY, base=mock_url.url)


def test_list_trades_paginates_across_pages(client: RESTClient, mock_url: ThreadedMock) -> None:
    lo = day_start_ns(DAY, AssetClass.STOCKS) + 9 * 3_600 * 10**9
    hi = lo + 2 * 3_600 * 10**9 + 1_800 * 10**9
    before = mock_url.stats.by_path["/v3/trades/AAPL"]
    trades = list(client.list_trades("AAPL", timestamp_gte=lo, timestamp_lt=hi, limit=50000))
    expected = TickSeries("AAPL", "trades", SEED).count(lo, hi)
    assert len(trades) == expected > 150_000
    assert mock_url.stats.by_path["/v3/trades/AAPL"] - before == -(-expected // 50_000)
    assert all(isinstance(t, Trade) for t in trades)
    stamps = [t.sip_timestamp for t in trades]
    assert all(a > b for a, b in itertools.pairwise(stamps))  # newest first
    assert all(lo <= s < hi for s in (stamps[0], stamps[-1]))
    for trade in trades[::997]:
        assert trade.price is not None
        assert 0.75 < trade.price / REFERENCE_PRICES["AAPL"] < 1.3
        assert trade.size is not None
        assert trade.size > 0
        assert trade.exchange is not None
        assert trade.id is not None
        assert trade.participant_timestamp is not None
        assert trade.participant_timestamp < trade.sip_timestamp


def test_list_trades_by_date_is_lazy(client: RESTClient, mock_url: ThreadedMock) -> None:
    before = mock_url.stats.by_path["/v3/trades/TSLA"]
    first = list(
        itertools.islice(client.list_trades("TSLA", timestamp="2024-06-14", limit=50000), 120_000)
    )
    assert len(first) == 120_000
    assert mock_url.stats.by_path["/v3/trades/TSLA"] - before == 3


def test_aggregates(client: RESTClient) -> None:
    bars = list(client.list_aggs("AAPL", 1, "minute", "2024-06-13", "2024-06-13", limit=200))
    assert len(bars) == 960
    daily = client.get_aggs("MSFT", 1, "day", "2024-05-01", "2024-05-31")
    assert len(daily) == 23  # weekdays in May 2024 (the mock has no holiday calendar)
    for bar in [*bars, *daily]:
        assert isinstance(bar, Agg)
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0
        assert bar.transactions > 0
        assert bar.timestamp > 10**12
    prev = client.get_previous_close_agg("AAPL")
    assert prev[0].ticker == "AAPL"
    assert prev[0].timestamp == day_start_ns(date(2024, 6, 13), AssetClass.STOCKS) // 10**6
    day = client.get_daily_open_close_agg("AAPL", "2024-06-14")
    assert day.symbol == "AAPL"
    assert day.from_ == "2024-06-14"
    assert day.low <= day.close <= day.high
    grouped = client.get_grouped_daily_aggs("2024-06-14")
    assert len(grouped) == len(universe("stocks"))


def test_reference_data(client: RESTClient) -> None:
    details = client.get_ticker_details("AAPL")
    assert details.ticker == "AAPL"
    assert details.name == "Apple Inc."
    assert details.market == "stocks"
    tickers = list(client.list_tickers(market="stocks", limit=1000))
    assert len(tickers) == len(universe("stocks"))
    assert all(isinstance(t, Ticker) for t in tickers)
    assert [t.ticker for t in tickers] == sorted(t.ticker for t in tickers)
    contracts = list(client.list_options_contracts(underlying_ticker="SPY", limit=1000))
    assert len(contracts) == len(option_chain("SPY", DAY))
    assert {c.underlying_ticker for c in contracts} == {"SPY"}
    assert {e.id for e in client.get_exchanges()} >= {4, 10, 11, 12}
    assert next(iter(client.list_conditions())).name
    news = list(itertools.islice(client.list_ticker_news("AAPL", limit=5), 5))
    assert len(news) == 5
    assert all("AAPL" in n.tickers for n in news)
    assert all(d.ticker == "AAPL" for d in itertools.islice(client.list_dividends("AAPL"), 5))


def test_last_trade_quote_and_snapshots(client: RESTClient) -> None:
    trade = client.get_last_trade("AAPL")
    assert trade.ticker == "AAPL"
    assert trade.price
    assert trade.sip_timestamp
    quote = client.get_last_quote("AAPL")
    assert quote.bid_price <= quote.ask_price
    snapshot = client.get_snapshot_ticker("stocks", "AAPL")
    assert snapshot.ticker == "AAPL"
    assert snapshot.day.low <= snapshot.day.close <= snapshot.day.high
    assert snapshot.last_trade.price
    assert snapshot.last_quote.ask_price
    both = client.get_snapshot_all("stocks", ["AAPL", "MSFT"])
    assert [s.ticker for s in both] == ["AAPL", "MSFT"]
    crypto = client.get_last_crypto_trade("BTC", "USD")
    assert 0.75 < crypto.price / REFERENCE_PRICES["X:BTCUSD"] < 1.3
    conversion = client.get_real_time_currency_conversion("EUR", "USD", amount=100)
    assert conversion.initial_amount == 100
    assert 75 < conversion.converted < 140


def test_options_chain_and_contract(client: RESTClient, mock_url: ThreadedMock) -> None:
    before = mock_url.stats.by_path["/v3/snapshot/options/SPY"]
    chain = list(client.list_snapshot_options_chain("SPY", params={"limit": 250}))
    assert len(chain) == len(option_chain("SPY", DAY))
    assert mock_url.stats.by_path["/v3/snapshot/options/SPY"] - before == -(-len(chain) // 250)
    assert all(isinstance(c, OptionContractSnapshot) for c in chain)
    tickers = [c.details.ticker for c in chain]
    assert tickers == sorted(set(tickers))
    one = client.get_snapshot_option("SPY", tickers[0])
    assert one.details.ticker == tickers[0]
    assert one.underlying_asset.ticker == "SPY"
    assert one.last_quote.bid <= one.last_quote.ask


def test_indicators_and_market_status(client: RESTClient) -> None:
    sma = client.get_sma("AAPL", timespan="day", window=10, limit=5)
    assert len(sma.values) == 5
    assert all(0.75 < v.value / REFERENCE_PRICES["AAPL"] < 1.3 for v in sma.values)
    rsi = client.get_rsi("AAPL", limit=3)
    assert all(0 <= v.value <= 100 for v in rsi.values)
    status = client.get_market_status()
    assert status.market == "open"


def test_errors_and_retries(mock_url: ThreadedMock) -> None:
    with pytest.raises(BadResponse, match="Unknown API Key"):
        RESTClient(api_key="wrong", base=mock_url.url, retries=0).get_last_trade("AAPL")
    before = mock_url.stats.by_path["/v2/last/trade/MSFT"]
    mock_url.faults.inject_5xx(2, status=503)
    trade = RESTClient(api_key=KEY, base=mock_url.url, retries=3).get_last_trade("MSFT")
    assert trade.ticker == "MSFT"
    assert mock_url.stats.by_path["/v2/last/trade/MSFT"] - before == 3  # two 503s, then the answer
