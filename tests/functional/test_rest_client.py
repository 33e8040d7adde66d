"""The async REST client against the mock over real HTTP: calls, pages, options, errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from massivekit.errors import (
    AuthError,
    ConfigError,
    DeserializeError,
    NotFound,
    TransportError,
)
from massivekit.rest import (
    AsyncPager,
    AsyncRestClient,
    CallOptions,
    Page,
    Pagination,
    RawResponse,
    to_datetime,
)
from massivekit.rest._models import LastTrade, Trade
from tests.functional.rest_support import (
    KEY,
    WINDOW_GTE,
    WINDOW_LT,
    RestMock,
    serve,
)


@pytest.fixture
async def rest_mock() -> AsyncIterator[RestMock]:
    async with serve() as mock:
        yield mock


TRADES_ROUTE = "/v3/trades/{stockTicker}"
WINDOW_TRADES = 87  # AAPL trades of the mock in the window, seed 11


def window_trades(client: AsyncRestClient, **kwargs: object) -> AsyncPager[Trade]:
    return client.list_trades(
        "AAPL",
        timestamp_gte=WINDOW_GTE,
        timestamp_lt=WINDOW_LT,
        limit=30,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(rest_mock: RestMock) -> AsyncIterator[AsyncRestClient]:
    async with AsyncRestClient(KEY, base_url=rest_mock.url) as client:
        yield client


# -- pagination --------------------------------------------------------------


async def test_auto_pagination_follows_every_next_url(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        trades = [t async for t in window_trades(client)]
    assert len(trades) == WINDOW_TRADES
    assert all(isinstance(t, Trade) for t in trades)
    assert rest_mock.stats.by_route[TRADES_ROUTE] == 3  # 30 + 30 + 27
    stamps = [t.sip_timestamp for t in trades]
    assert all(s is not None and WINDOW_GTE <= s < WINDOW_LT for s in stamps)


async def test_no_pagination_fetches_the_first_page_only(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        trades = [t async for t in window_trades(client, pagination=Pagination.NONE)]
    assert len(trades) == 30
    assert rest_mock.stats.by_route[TRADES_ROUTE] == 1


@pytest.mark.parametrize(("n", "requests"), [(0, 0), (10, 1), (30, 1), (31, 2), (45, 2), (500, 3)])
async def test_max_items_fetches_no_more_pages_than_needed(
    client: AsyncRestClient, rest_mock: RestMock, n: int, requests: int
) -> None:
    async with asyncio.timeout(10):
        trades = [t async for t in window_trades(client, pagination=Pagination.max_items(n))]
    assert len(trades) == min(n, WINDOW_TRADES)
    assert rest_mock.stats.by_route[TRADES_ROUTE] == requests


async def test_max_items_asks_for_no_more_rows_than_it_needs(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        trades = [t async for t in window_trades(client, pagination=Pagination.max_items(7))]
    assert len(trades) == 7
    assert rest_mock.seen[0].query["limit"] == "7"


async def test_client_wide_pagination_default_like_the_official_client(
    rest_mock: RestMock,
) -> None:
    async with AsyncRestClient(KEY, base=rest_mock.url, pagination=False) as client:
        async with asyncio.timeout(10):
            trades = [t async for t in window_trades(client)]
        assert len(trades) == 30
        pager = window_trades(client).with_pagination(Pagination.AUTO)
        async with asyncio.timeout(10):
            assert len(await pager.collect()) == WINDOW_TRADES


async def test_pages_carry_request_ids_and_clean_next_urls(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        pages = [p async for p in window_trades(client).pages()]
    assert [len(p.items) for p in pages] == [30, 30, 27]
    assert all(isinstance(p, Page) and p.status == 200 for p in pages)
    assert len({p.request_id for p in pages}) == 3
    assert all(p.request_id for p in pages)
    assert pages[0].next_url is not None
    assert "cursor=" in pages[0].next_url
    assert pages[-1].next_url is None


async def test_the_next_page_is_requested_while_the_consumer_holds_this_one(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        pages = window_trades(client).pages()
        first = await anext(pages)
        assert len(first.items) == 30
        # The consumer has not asked for page 2, yet its request reaches the server.
        await rest_mock.wait_requests(2)
        assert rest_mock.stats.by_route[TRADES_ROUTE] >= 1
        await pages.aclose()
    assert len(rest_mock.seen) == 2  # never more than one page ahead


async def test_stopping_early_cancels_the_prefetch(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    rest_mock.faults.latency = 0.2  # the prefetch is still in flight when we stop
    async with asyncio.timeout(10):
        async with window_trades(client) as pager:
            async for _ in pager:
                break
        await client.aclose()
    assert not client._tasks
    assert client.closed


async def test_next_url_is_followed_with_the_bearer_header_and_without_the_key(
    client: AsyncRestClient, rest_mock: RestMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="massivekit.rest")
    async with asyncio.timeout(10):
        pages = [p async for p in client._list("/test/pages", None, item=Trade).pages()]
    assert [p.items[0].price for p in pages] == [0.0, 1.0, 2.0]
    assert [p.request_id for p in pages] == ["rid-0", "rid-1", "rid-2"]
    for page in pages:
        assert page.next_url is None or KEY not in page.next_url
    for seen in rest_mock.seen:
        assert "apiKey" not in seen.query
        assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert rest_mock.seen[1].query == {"page": "1"}
    assert KEY not in caplog.text


async def test_a_cursor_that_repeats_itself_ends_the_list(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        items = await client._list("/test/loop", None, item=Trade).collect()
    assert len(items) == 2
    assert rest_mock.paths() == ["/test/loop", "/test/loop"]


async def test_a_wrong_guess_at_next_url_is_corrected(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    async with asyncio.timeout(10):
        items = await client._list("/test/tricky", None, item=Trade).collect()
    assert [t.id for t in items] == ["0", "1"]
    assert rest_mock.paths().count("/test/tricky") == 2
    assert rest_mock.paths().count("/test/bogus") <= 1  # the cancelled speculative request


# -- single objects, raw answers, options -------------------------------------


async def test_get_returns_a_typed_model(client: AsyncRestClient) -> None:
    async with asyncio.timeout(10):
        last = await client.get_last_trade("AAPL")
    assert isinstance(last, LastTrade)
    assert last.ticker == "AAPL"
    assert last.sip_timestamp is not None
    when = to_datetime(last.sip_timestamp)
    assert when.tzinfo is UTC
    assert datetime(2024, 6, 14, tzinfo=UTC) <= when


async def test_raw_returns_the_undecoded_answer(client: AsyncRestClient) -> None:
    async with asyncio.timeout(10):
        raw = await client.get_last_trade("AAPL", raw=True)
        first_page = await window_trades(client, raw=True)
    assert isinstance(raw, RawResponse)
    assert raw.status == 200
    assert raw.json()["results"]["T"] == "AAPL"
    assert raw.headers["X-Request-Id"] == raw.json()["request_id"]
    assert KEY not in raw.url
    assert isinstance(first_page, RawResponse)
    assert len(first_page.json()["results"]) == 30


async def test_extra_params_and_headers_reach_the_server(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    options = CallOptions(
        params={"limit": 5, "custom": True},
        headers={"X-Massive-Edge-User-Id": "user-1", "Authorization": "Bearer stolen"},
    )
    async with asyncio.timeout(10):
        trades = [t async for t in window_trades(client, options=options, params={"extra": "x"})]
    seen = rest_mock.seen[0]
    assert seen.query["limit"] == "5"  # CallOptions.params win over the method's
    assert seen.query["custom"] == "true"
    assert seen.query["extra"] == "x"
    assert seen.query["timestamp.gte"] == str(WINDOW_GTE)
    assert seen.headers["X-Massive-Edge-User-Id"] == "user-1"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"  # the key is never replaced
    assert len(trades) == WINDOW_TRADES


async def test_gzip_is_asked_for_and_inflated(rest_mock: RestMock) -> None:
    async with AsyncRestClient(KEY, base_url=rest_mock.url) as client:
        async with asyncio.timeout(10):
            raw = await window_trades(client, raw=True)
            trades = [t async for t in window_trades(client)]
    assert rest_mock.seen[0].headers["Accept-Encoding"] == "gzip"
    assert isinstance(raw, RawResponse)
    assert raw.headers.get("Content-Encoding") == "gzip"
    assert len(raw.json()["results"]) == 30
    assert len(trades) == WINDOW_TRADES


async def test_big_gzip_pages_are_inflated_off_the_loop(client: AsyncRestClient) -> None:
    async with asyncio.timeout(20):
        pager = client.list_trades("AAPL", timestamp="2024-01-02", limit=5000)
        page = await anext(pager.with_pagination(Pagination.NONE).pages())
        first = await anext(pager)  # the pager is an async iterator too
        await pager.aclose()
    assert len(page.items) == 5000
    assert first == page.items[0]


async def test_a_body_that_does_not_inflate_is_a_deserialize_error(
    client: AsyncRestClient,
) -> None:
    with pytest.raises(DeserializeError, match="does not inflate") as caught:
        async with asyncio.timeout(10):
            await client._get("/test/bad-gzip", None, result=dict)
    assert caught.value.status == 200


async def test_gzip_can_be_switched_off(rest_mock: RestMock) -> None:
    from massivekit.auth import ApiKey
    from massivekit.config import RestConfig

    config = RestConfig(api_key=ApiKey(KEY), base_url=rest_mock.url, gzip=False)
    async with AsyncRestClient(config=config) as client:
        async with asyncio.timeout(10):
            raw = await window_trades(client, raw=True)
    assert rest_mock.seen[0].headers["Accept-Encoding"] == "identity"
    assert isinstance(raw, RawResponse)
    assert "Content-Encoding" not in raw.headers


async def test_trace_logging_shows_direction_and_no_key(
    client: AsyncRestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="massivekit.rest")
    async with asyncio.timeout(10):
        await window_trades(client).collect()
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("> GET ")]
    answered = [r.getMessage() for r in caplog.records if r.getMessage().startswith("< 200 in ")]
    assert len(sent) == 3
    assert len(answered) == 3
    assert "timestamp.gte=" in sent[0]
    assert ", 30 items, request_id=" in answered[0]
    assert KEY not in caplog.text


# -- errors ----------------------------------------------------------------------


async def test_bad_key_is_an_auth_error_with_status_and_request_id(rest_mock: RestMock) -> None:
    async with AsyncRestClient("not-a-known-key", base_url=rest_mock.url) as client:
        with pytest.raises(AuthError) as caught:
            async with asyncio.timeout(10):
                await client.get_last_trade("AAPL")
    error = caught.value
    assert error.status == 401
    assert error.request_id
    assert len(error.request_id) == 32
    assert "Unknown API Key" in str(error)
    assert rest_mock.stats.total == 1  # a 401 is not retried


async def test_unknown_path_is_not_found(client: AsyncRestClient) -> None:
    with pytest.raises(NotFound) as caught:
        async with asyncio.timeout(10):
            await client._get("/v3/no/such/thing", None, result=dict)
    assert caught.value.status == 404
    assert caught.value.request_id


async def test_malformed_json_is_a_deserialize_error(
    client: AsyncRestClient, rest_mock: RestMock
) -> None:
    rest_mock.faults.malformed_json_next(2)
    with pytest.raises(DeserializeError) as caught:
        async with asyncio.timeout(10):
            await client.get_last_trade("AAPL")
    assert caught.value.status == 200
    assert caught.value.request_id
    assert "not valid JSON" in str(caught.value)
    with pytest.raises(DeserializeError):
        async with asyncio.timeout(10):
            await window_trades(client).collect()
    assert rest_mock.stats.total == 2  # not retried


async def test_a_body_that_does_not_fit_the_model_is_a_deserialize_error(
    client: AsyncRestClient,
) -> None:
    with pytest.raises(DeserializeError, match="does not fit"):
        async with asyncio.timeout(10):
            await client._get("/v2/last/trade/AAPL", None, result=int)


async def test_no_key_anywhere_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MASSIVE_API_KEY"):
        AsyncRestClient(env={})
    with pytest.raises(ConfigError, match="http"):
        AsyncRestClient(KEY, base_url="ftp://example.com")


async def test_the_key_can_come_from_the_environment(rest_mock: RestMock) -> None:
    async with AsyncRestClient(base_url=rest_mock.url, env={"MASSIVE_API_KEY": KEY}) as client:
        async with asyncio.timeout(10):
            assert (await client.get_last_trade("AAPL")).ticker == "AAPL"


async def test_a_closed_client_refuses_calls(client: AsyncRestClient) -> None:
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(TransportError, match="closed"):
        await client.get_last_trade("AAPL")
