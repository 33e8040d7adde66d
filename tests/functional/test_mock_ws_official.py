"""The official ``massive`` WebSocketClient works unchanged against the mock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from massive import WebSocketClient
from massive.exceptions import AuthError
from massive.websocket.models import Market as OfficialMarket

from massivekit.mock.server import MockServer

from .conftest import KEY

CASES = [
    (OfficialMarket.Stocks, ["T.*", "Q.AAPL", "AM.*"], "EquityTrade"),
    (OfficialMarket.Options, ["T.*"], "EquityTrade"),
    (OfficialMarket.Forex, ["C.*"], "ForexQuote"),
    (OfficialMarket.Crypto, ["XT.*", "XQ.*"], "CryptoTrade"),
    (OfficialMarket.Indices, ["V.*"], "IndexValue"),
    (OfficialMarket.Futures, ["T.*"], "FuturesTrade"),
]


async def collect(client: WebSocketClient, count: int) -> list[Any]:
    """Run the official client until it has delivered ``count`` messages."""
    received: list[Any] = []
    enough = asyncio.Event()

    async def processor(messages: list[Any]) -> None:
        received.extend(messages)
        if len(received) >= count:
            enough.set()

    task = asyncio.create_task(client.connect(processor))
    try:
        async with asyncio.timeout(10):
            await enough.wait()
    finally:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return received


@pytest.mark.parametrize(("market", "topics", "kind"), CASES)
async def test_official_client_streams_every_cluster(
    mock: MockServer, market: OfficialMarket, topics: list[str], kind: str
) -> None:
    client = WebSocketClient(
        api_key=KEY,
        feed=f"{mock.host}:{mock.port}",
        market=market,
        secure=False,
        subscriptions=topics,
    )
    messages = await collect(client, 50)
    kinds = {type(m).__name__ for m in messages}
    assert kind in kinds, kinds
    first = next(m for m in messages if type(m).__name__ == kind)
    fields = vars(first)
    assert any(v is not None for v in fields.values()), fields


async def test_official_client_sees_auth_failed(mock: MockServer) -> None:
    client = WebSocketClient(
        api_key="wrong-key", feed=f"{mock.host}:{mock.port}", market="stocks", secure=False
    )

    async def processor(messages: list[Any]) -> None:
        raise AssertionError("no data must come with a bad key")

    with pytest.raises(AuthError):
        async with asyncio.timeout(10):
            await client.connect(processor)
