"""Against the real Massive service: run only with MASSIVE_API_KEY set.

They check what the mock cannot prove: that the real service still answers
as PROTOCOL.md and the models expect. Each call is small (a page or two),
well inside a free plan's 5 requests a minute.
"""

from __future__ import annotations

import asyncio

import pytest

from massivekit import AuthError, Feed, Market, Pagination, StreamClient
from massivekit.rest import AsyncRestClient

pytestmark = pytest.mark.live


async def test_market_status_and_ticker_details() -> None:
    async with asyncio.timeout(60), AsyncRestClient() as client:
        status = await client.get_market_status()
        assert status is not None
        details = await client.get_ticker_details("AAPL")
        assert details is not None
        assert details.ticker == "AAPL"


async def test_list_aggs_pages_a_few_items() -> None:
    async with asyncio.timeout(60), AsyncRestClient() as client:
        bars = [
            bar
            async for bar in client.list_aggs(
                "AAPL", 1, "day", "2024-01-02", "2024-01-31", pagination=Pagination.max_items(5)
            )
        ]
    assert 0 < len(bars) <= 5
    assert all(bar.low is None or bar.high is None or bar.low <= bar.high for bar in bars)


async def test_a_bad_key_is_an_auth_error() -> None:
    async with asyncio.timeout(60), AsyncRestClient(api_key="not-a-real-key-0000") as client:
        with pytest.raises(AuthError):
            await client.get_ticker_details("AAPL")


async def test_delayed_stream_authenticates_and_acks() -> None:
    async with (
        asyncio.timeout(60),
        StreamClient(feed=Feed.DELAYED, market=Market.STOCKS) as client,
    ):
        await client.subscribe("AM.AAPL", confirm=True, timeout=30)
        assert "AM.AAPL" in client.subscriptions
