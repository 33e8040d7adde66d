"""The blocking client: the same core on a private loop thread, against a mock on another."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from massivekit.errors import AuthError, DeserializeError, ServerError, TransportError
from massivekit.rest import (
    AsyncRestClient,
    CallOptions,
    Page,
    Pagination,
    RawResponse,
    RestClient,
    SyncPager,
)
from massivekit.rest._models import LastTrade, Trade
from tests.functional.rest_support import (
    KEY,
    WINDOW_GTE,
    WINDOW_LT,
    RestMock,
    threaded_mock,
)


@pytest.fixture
def sync_mock() -> Iterator[RestMock]:
    with threaded_mock() as mock:
        yield mock


TRADES_ROUTE = "/v3/trades/{stockTicker}"


def window_trades(client: RestClient, **kwargs: object) -> SyncPager[Trade]:
    return client.list_trades(
        "AAPL",
        timestamp_gte=WINDOW_GTE,
        timestamp_lt=WINDOW_LT,
        limit=30,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(sync_mock: RestMock) -> Iterator[RestClient]:
    with RestClient(KEY, base_url=sync_mock.url) as client:
        yield client


def rest_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "massivekit-rest"]


@pytest.mark.timeout(20)
def test_get_and_list_block_and_return_typed_values(
    client: RestClient, sync_mock: RestMock
) -> None:
    last = client.get_last_trade("AAPL")
    assert isinstance(last, LastTrade)
    assert last.ticker == "AAPL"
    trades = list(window_trades(client))
    assert len(trades) == 87
    assert all(isinstance(t, Trade) for t in trades)
    assert sync_mock.stats.by_route[TRADES_ROUTE] == 3


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("mode", "items", "requests"),
    [
        (Pagination.NONE, 30, 1),
        (Pagination.max_items(45), 45, 2),
        (Pagination.max_items(30), 30, 1),
        (Pagination.AUTO, 87, 3),
    ],
)
def test_pagination_modes(
    client: RestClient, sync_mock: RestMock, mode: Pagination, items: int, requests: int
) -> None:
    assert len(window_trades(client, pagination=mode).collect()) == items
    assert sync_mock.stats.by_route[TRADES_ROUTE] == requests


@pytest.mark.timeout(20)
def test_pages_and_raw(client: RestClient) -> None:
    pages = list(window_trades(client).pages())
    assert [len(p.items) for p in pages] == [30, 30, 27]
    assert all(isinstance(p, Page) and p.request_id for p in pages)
    raw = client.get_last_trade("AAPL", raw=True)
    assert isinstance(raw, RawResponse)
    assert raw.json()["results"]["T"] == "AAPL"


@pytest.mark.timeout(20)
def test_stopping_early_closes_the_pager_and_its_prefetch(
    client: RestClient, sync_mock: RestMock
) -> None:
    sync_mock.faults.latency = 0.1
    with window_trades(client) as pager:
        first = next(iter(pager))
        assert isinstance(first, Trade)
    assert next(pager, None) is None  # closed: no more items, no error
    assert len(sync_mock.seen) <= 2


@pytest.mark.timeout(20)
def test_errors_are_the_same_typed_errors(sync_mock: RestMock) -> None:
    with (
        RestClient("wrong-key-for-sync", base_url=sync_mock.url) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.get_last_trade("AAPL")
    assert caught.value.status == 401
    assert caught.value.request_id
    with RestClient(KEY, base_url=sync_mock.url) as client:
        sync_mock.faults.malformed_json_next(1)
        with pytest.raises(DeserializeError):
            list(window_trades(client))
        sync_mock.faults.inject_5xx(5)
        with pytest.raises(ServerError):
            client.get_last_trade("AAPL", options=CallOptions(retries=0))


@pytest.mark.timeout(20)
def test_retries_use_the_injected_sleep(sync_mock: RestMock) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    sync_mock.faults.inject_5xx(2)
    with RestClient(KEY, base_url=sync_mock.url, sleep=sleep) as client:
        assert client.get_last_trade("AAPL").ticker == "AAPL"
    assert len(waits) == 2


@pytest.mark.timeout(20)
def test_close_stops_the_thread_and_refuses_calls(sync_mock: RestMock) -> None:
    before = len(rest_threads())
    client = RestClient(KEY, base_url=sync_mock.url)
    assert len(rest_threads()) == before + 1
    client.get_last_trade("AAPL")
    pager = window_trades(client)
    client.close()
    client.close()  # idempotent
    assert client.closed
    assert len(rest_threads()) == before
    with pytest.raises(TransportError, match="closed"):
        client.get_last_trade("AAPL")
    with pytest.raises(TransportError, match="closed"):
        list(pager)
    assert "rest-client-key" not in repr(client)


@pytest.mark.timeout(20)
def test_the_sync_face_matches_the_async_one(client: RestClient, sync_mock: RestMock) -> None:
    async def with_async() -> tuple[LastTrade, list[Trade], list[str | None]]:
        async with AsyncRestClient(KEY, base_url=sync_mock.url) as aclient:
            last = await aclient.get_last_trade("AAPL")
            pager = aclient.list_trades(
                "AAPL", timestamp_gte=WINDOW_GTE, timestamp_lt=WINDOW_LT, limit=30
            )
            trades = await pager.collect()
            pages = [p.next_url async for p in pager.with_pagination(Pagination.AUTO).pages()]
            return last, trades, pages

    a_last, a_trades, a_next = asyncio.run(with_async())
    s_last = client.get_last_trade("AAPL")
    s_trades = window_trades(client).collect()
    s_next = [p.next_url for p in window_trades(client).pages()]
    assert s_last == a_last
    assert s_trades == a_trades
    assert len(s_next) == len(a_next) == 3
    assert s_next[-1] is None is a_next[-1]


def test_every_async_endpoint_has_a_sync_twin_with_the_same_parameters() -> None:
    import inspect

    names = [n for n in dir(AsyncRestClient) if n.startswith(("get_", "list_"))]
    assert len(names) >= 92
    for name in names:
        a = inspect.signature(getattr(AsyncRestClient, name))
        s = inspect.signature(getattr(RestClient, name))
        assert list(a.parameters) == list(s.parameters), name


def test_no_key_is_a_config_error_before_any_thread_starts() -> None:
    from massivekit.errors import ConfigError

    before = len(rest_threads())
    with pytest.raises(ConfigError):
        RestClient(env={})
    assert len(rest_threads()) == before


@pytest.mark.timeout(20)
def test_one_client_can_be_shared_by_threads(client: RestClient, sync_mock: RestMock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        lasts = list(pool.map(lambda _: client.get_last_trade("AAPL"), range(8)))
        counts = list(pool.map(lambda _: len(window_trades(client).collect()), range(4)))
    assert all(last.ticker == "AAPL" for last in lasts)
    assert counts == [87] * 4


@pytest.mark.timeout(20)
def test_an_async_client_is_bound_to_the_loop_that_first_used_it(sync_mock: RestMock) -> None:
    client = AsyncRestClient(KEY, base_url=sync_mock.url)

    async def call() -> None:
        async with asyncio.timeout(10):
            await client.get_last_trade("AAPL")

    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first.run_until_complete(call())
        with pytest.raises(TransportError, match="another event loop"):
            second.run_until_complete(call())
        first.run_until_complete(client.aclose())
    finally:
        first.close()
        second.close()
